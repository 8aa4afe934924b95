"""From segment hits to shot rankings, and the two run formats TRECVID reads.

A search returns scored segments (sampled frames, transcript spans); TRECVID judges master shots. A shot
scores the best of the segments inside it, since one matching frame is enough for a shot to show the query.
Ranked lists are written as TREC runs (`topic Q0 shotId rank score runId`, what sample_eval.pl and trec_eval
read) or as the AVS submission XML checked against NIST's videoAdhocSearchResults DTD.
"""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mmsearch.errors import BadInput, UsageError
from mmsearch.trecvid._textio import data_lines, read_text
from mmsearch.trecvid.msb import MasterShotReference, video_id_for_path
from mmsearch.trecvid.topics import Topic
from mmsearch.types import SegmentHit, SegmentKind

# Per topic: (shot id, score) pairs.
Rankings = Mapping[str, Sequence[tuple[str, float]]]

DEFAULT_MAX_RESULTS = 1000
# DOCTYPE by the newest attribute a run carries: the 2016-2018 DTD has trType class pid priority desc;
# 2019-2021 runs (V3C) add task and novelty, 2022-2023 runs also algo (seen in SIRET 2019 and VIREO 2023 runs).
AVS_DTD_URLS: tuple[tuple[str, str], ...] = (
    ("algo", "https://www-nlpir.nist.gov/projects/tv2023/dtds/videoAdhocSearchResults.dtd"),
    ("task", "https://www-nlpir.nist.gov/projects/tv2019/dtds/videoAdhocSearchResults.dtd"),
    ("novelty", "https://www-nlpir.nist.gov/projects/tv2019/dtds/videoAdhocSearchResults.dtd"),
)
AVS_DTD_2016 = "https://www-nlpir.nist.gov/projects/tv2016/dtds/videoAdhocSearchResults.dtd"


@dataclass(frozen=True)
class AvsRunInfo:
    """Attributes of `videoAdhocSearchRunResult` (see the DTD's comments for their meaning).

    tr_type: training type letter (A, D, E, F in the 2016 DTD); run_class: M manually assisted, F fully
    automatic; priority: judging order, 1 first. task (M main, P progress), novelty (e.g. C) and algo exist
    only in the 2019+ DTDs: None leaves them out, which keeps the run valid against the 2016 DTD.
    """

    pid: str
    priority: int = 1
    tr_type: str = "D"
    run_class: str = "F"
    task: str | None = None
    desc: str = "mmsearch automatic run"
    novelty: str | None = None
    algo: str | None = None

    def __post_init__(self) -> None:
        if not self.pid.strip():
            raise UsageError("AVS runs need a participant id (pid)")
        if not 1 <= self.priority <= 10:
            raise UsageError(f"AVS run priority must be 1..10, got {self.priority}")
        letters = (("trType", self.tr_type), ("class", self.run_class), ("task", self.task), ("novelty", self.novelty))
        for name, value in letters:
            if value is not None and (len(value) != 1 or not value.isupper()):
                raise UsageError(f"AVS run attribute {name} must be one capital letter, got {value!r}")
        if self.algo is not None and (not self.algo.strip() or any(c in self.algo for c in '<&"')):
            raise UsageError(f"AVS run attribute algo must be a non-empty name, got {self.algo!r}")

    def attributes(self) -> dict[str, str]:
        """In the order teams' runs write them: trType class task novelty algo pid priority desc."""
        attrs = {"trType": self.tr_type, "class": self.run_class}
        optional = {"task": self.task, "novelty": self.novelty, "algo": self.algo}
        attrs.update({name: value for name, value in optional.items() if value is not None})
        attrs.update(pid=self.pid, priority=str(self.priority), desc=self.desc)
        return attrs

    @property
    def dtd_url(self) -> str:
        attrs = self.attributes()
        return next((url for name, url in AVS_DTD_URLS if name in attrs), AVS_DTD_2016)


class SegmentSearcher(Protocol):
    """The part of `mmsearch.search.searcher.Searcher` a run needs."""

    def search_segments(self, text: str, k: int, kinds: frozenset[SegmentKind] | None = None) -> list[SegmentHit]: ...


@dataclass(frozen=True)
class TopicRun:
    """Shot rankings per topic and the seconds each topic's search took (the AVS XML reports them)."""

    rankings: dict[str, list[tuple[str, float]]]
    elapsed: dict[str, float]

    @property
    def num_shots(self) -> int:
        return sum(len(r) for r in self.rankings.values())


def run_topics(
    searcher: SegmentSearcher,
    topics: Sequence[Topic],
    msb: MasterShotReference,
    segments_per_topic: int,
    max_results: int = DEFAULT_MAX_RESULTS,
) -> TopicRun:
    """Search every topic's text, fold its segment hits into shots and keep the best `max_results` shots."""
    _check_max_results(max_results)
    rankings: dict[str, list[tuple[str, float]]] = {}
    elapsed: dict[str, float] = {}
    for topic in topics:
        began = time.perf_counter()
        hits = searcher.search_segments(topic.text, segments_per_topic)
        rankings[topic.num] = rank_shots(shot_scores(hits, msb).items(), max_results)
        elapsed[topic.num] = time.perf_counter() - began
    return TopicRun(rankings, elapsed)


def shot_scores(hits: Iterable[SegmentHit], msb: MasterShotReference) -> dict[str, float]:
    """Best segment score per shot.

    A sampled frame is a picture of one instant, so it counts for the one shot containing its timestamp
    (its segment [t, t + 1/fps) only says how long it stands for, and may cross a cut). A transcript span
    counts for every shot its [start, end) overlaps. Stills (start None) have no place on a timeline and are
    skipped, as are videos the msb does not know.
    """
    best: dict[str, float] = {}
    for hit in hits:
        if hit.start is None:
            continue
        end = None if hit.kind is SegmentKind.FRAME else hit.end
        for shot in msb.overlapping(video_id_for_path(hit.path), hit.start, end):
            if hit.score > best.get(shot.shot_id, -math.inf):
                best[shot.shot_id] = hit.score
    return best


def rank_shots(scores: Iterable[tuple[str, float]], max_results: int) -> list[tuple[str, float]]:
    """Best score per shot, in sample_eval.pl's and trec_eval's order: score desc, then shot id desc."""
    best: dict[str, float] = {}
    for shot, score in scores:
        score = float(score)
        if math.isnan(score):
            raise UsageError(f"score of {shot} is NaN")
        if score > best.get(shot, -math.inf):
            best[shot] = score
    ranked = sorted(best.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return ranked[:max_results]


def write_trec_run(rankings: Rankings, path: str | Path, run_id: str, max_results: int = DEFAULT_MAX_RESULTS) -> int:
    """Write `topic Q0 shotId rank score runId` lines; returns the number of lines written."""
    _check_token(run_id, "run id")
    _check_max_results(max_results)
    lines = []
    for topic in _topic_order(rankings):
        _check_token(topic, "topic")
        for rank, (shot, score) in enumerate(rank_shots(rankings[topic], max_results), start=1):
            lines.append(f"{topic} Q0 {shot} {rank} {score!r} {run_id}")
    _write(path, "\n".join(lines) + "\n" if lines else "", "run file")
    return len(lines)


def read_trec_run(path: str | Path) -> dict[str, list[tuple[str, float]]]:
    """Per topic, (shot id, score) in file order; rank and run id columns are checked for presence only."""
    rankings: dict[str, list[tuple[str, float]]] = {}
    for number, fields in data_lines(read_text(path, "run file").splitlines()):
        if len(fields) != 6:
            raise BadInput(f"{path}:{number}: expected 6 fields 'topic Q0 shotId rank score runId'")
        try:
            score = float(fields[4])
        except ValueError:
            raise BadInput(f"{path}:{number}: score is not a number: {fields[4]!r}") from None
        rankings.setdefault(fields[0], []).append((fields[2], score))
    return rankings


def write_avs_xml(
    rankings: Rankings,
    path: str | Path,
    info: AvsRunInfo,
    elapsed_time: Mapping[str, float] | None = None,
    max_results: int = DEFAULT_MAX_RESULTS,
) -> None:
    """Write an AVS submission: one videoAdhocSearchTopicResult per topic, items in rank order.

    `elapsed_time` gives seconds per topic (the DTD asks for the time from seeing the topic to the end of
    the search).
    """
    _check_max_results(max_results)
    if not rankings:
        raise UsageError("an AVS run needs at least one topic result")
    root = ET.Element("videoAdhocSearchResults")
    run = ET.SubElement(root, "videoAdhocSearchRunResult", info.attributes())
    for topic in _topic_order(rankings):
        seconds = (elapsed_time or {}).get(topic, 0.0)
        result = ET.SubElement(run, "videoAdhocSearchTopicResult", {"tNum": topic, "elapsedTime": f"{seconds:.3f}"})
        for rank, (shot, _score) in enumerate(rank_shots(rankings[topic], max_results), start=1):
            ET.SubElement(result, "item", {"seqNum": str(rank), "shotId": shot})
    ET.indent(root)
    header = f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE videoAdhocSearchResults SYSTEM "{info.dtd_url}">\n'
    _write(path, header + ET.tostring(root, encoding="unicode") + "\n", "AVS run file")


def validate_avs_xml(path: str | Path, dtd: str | Path) -> None:
    """Check a written AVS run against a DTD file (NIST accepts only runs valid against its DTDs)."""
    from lxml import etree

    try:
        schema = etree.DTD(str(dtd))
    except (OSError, etree.DTDParseError) as e:
        raise BadInput(f"cannot read DTD {dtd}: {e}") from e
    document = etree.parse(str(path), etree.XMLParser(load_dtd=False, no_network=True, resolve_entities=False))
    if not schema.validate(document):
        first = schema.error_log.filter_from_errors()[0] if schema.error_log.filter_from_errors() else None
        raise BadInput(
            f"{path} is not valid against {dtd}: {first.message if first else 'unknown error'}",
            hint="the 2016 DTD has no task/novelty/algo attributes; leave them out for 2016-2018 runs",
        )


def _topic_order(rankings: Rankings) -> list[str]:
    def key(topic: str) -> tuple[float, str]:
        try:
            return float(topic), topic
        except ValueError:
            return math.inf, topic

    return sorted(rankings, key=key)


def _check_token(value: str, what: str) -> None:
    if not value or any(ch.isspace() for ch in value):
        raise UsageError(f"{what} must be a non-empty word without spaces, got {value!r}")


def _check_max_results(max_results: int) -> None:
    if max_results < 1:
        raise UsageError(f"max results must be at least 1, got {max_results}")


def _write(path: str | Path, text: str, what: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {what} {path}: {e}") from e
