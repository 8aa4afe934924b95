"""Segment hits → shot scores → TREC run and AVS submission XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mmsearch.errors import BadInput, UsageError
from mmsearch.trecvid.msb import load_msb
from mmsearch.trecvid.runfile import (
    AvsRunInfo,
    rank_shots,
    read_trec_run,
    run_topics,
    shot_scores,
    validate_avs_xml,
    write_avs_xml,
    write_trec_run,
)
from mmsearch.trecvid.topics import Topic
from mmsearch.types import SegmentHit, SegmentKind

DATA = Path(__file__).parent / "data" / "trecvid"
MSB = load_msb(DATA / "msb_v3c")


def hit(
    path: str, start: float | None, end: float | None, score: float, kind: SegmentKind = SegmentKind.FRAME
) -> SegmentHit:
    return SegmentHit(segment_id=0, path=path, kind=kind, start=start, end=end, score=score)


def test_shot_scores_keep_the_best_segment_per_shot() -> None:
    hits = [
        hit("/media/00017.mp4", 1.0, 1.5, 0.30),
        hit("/media/00017.mp4", 2.0, 2.5, 0.50),  # same shot, better
        hit("/media/00017.mp4", 4.5, 5.5, 0.40, SegmentKind.SPEECH),  # spans shots 1 and 2
        hit("/media/00042.mkv", 61.0, 61.5, 0.20),
        hit("/photos/00017.jpg", None, None, 0.99, SegmentKind.IMAGE),  # a still: no shot
        hit("/media/unknown.mp4", 1.0, 1.5, 0.90),  # not in the msb
        hit("/media/00017.mp4", 99.0, 99.5, 0.90),  # after the last shot
    ]
    assert shot_scores(hits, MSB) == {"shot00017_1": 0.50, "shot00017_2": 0.40, "shot00042_2": 0.20}


def test_a_frame_counts_for_the_shot_containing_its_timestamp(tmp_path: Path) -> None:
    # The case seen: the frame at 7.0 s ([7, 8) at 1 fps) in a shot ending at 7.56 s scored both shots.
    msb_file = tmp_path / "msb.txt"
    msb_file.write_text("shotv_1 0 7.56\nshotv_2 7.6 20\n")
    msb = load_msb(msb_file)
    frame = hit("/m/v.mp4", 7.0, 8.0, 0.9)
    assert shot_scores([frame], msb) == {"shotv_1": 0.9}
    assert shot_scores([hit("/m/v.mp4", 7.6, 8.6, 0.8)], msb) == {"shotv_2": 0.8}
    # Speech is a span: it still counts for every shot it overlaps.
    assert shot_scores([hit("/m/v.mp4", 7.0, 8.0, 0.7, SegmentKind.SPEECH)], msb) == {"shotv_1": 0.7, "shotv_2": 0.7}


def test_rank_shots_orders_like_the_evaluators() -> None:
    ranked = rank_shots([("a", 0.5), ("c", 0.5), ("b", 0.9), ("b", 0.1), ("d", 0.5)], max_results=3)
    assert ranked == [("b", 0.9), ("d", 0.5), ("c", 0.5)]


def test_write_and_read_trec_run(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    rankings = {
        "612": [("shot1_1", 0.25), ("shot1_2", 0.75)],
        "611": [("shot2_1", 1.0), ("shot2_2", 0.5), ("shot2_3", 0.1)],
    }
    assert write_trec_run(rankings, path, "mm1", max_results=2) == 4
    assert path.read_text().splitlines() == [
        "611 Q0 shot2_1 1 1.0 mm1",
        "611 Q0 shot2_2 2 0.5 mm1",
        "612 Q0 shot1_2 1 0.75 mm1",
        "612 Q0 shot1_1 2 0.25 mm1",
    ]
    assert read_trec_run(path) == {
        "611": [("shot2_1", 1.0), ("shot2_2", 0.5)],
        "612": [("shot1_2", 0.75), ("shot1_1", 0.25)],
    }


def test_trec_run_scores_survive_exactly(tmp_path: Path) -> None:
    path = tmp_path / "run.txt"
    write_trec_run({"1": [("s_1", 0.1 + 0.2), ("s_2", 1 / 3)]}, path, "r")
    assert read_trec_run(path) == {"1": [("s_2", 1 / 3), ("s_1", 0.1 + 0.2)]}


def test_trec_run_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="run id"):
        write_trec_run({"1": [("s_1", 1.0)]}, tmp_path / "r", "my run")
    with pytest.raises(UsageError, match="NaN"):
        write_trec_run({"1": [("s_1", float("nan"))]}, tmp_path / "r", "r")
    (tmp_path / "bad").write_text("1 Q0 s_1 1 0.5\n")
    with pytest.raises(BadInput, match="expected 6 fields"):
        read_trec_run(tmp_path / "bad")
    (tmp_path / "bad").write_text("1 Q0 s_1 1 high r\n")
    with pytest.raises(BadInput, match="score is not a number"):
        read_trec_run(tmp_path / "bad")


def test_avs_xml_is_well_formed_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "run.xml"
    rankings = {"1612": [("shot1_1", 0.2), ("shot1_2", 0.9)], "1611": [("shot2_1", 0.5)]}
    info = AvsRunInfo(pid="MMS", priority=2, desc='CLIP & "speech"')
    write_avs_xml(rankings, path, info, elapsed_time={"1611": 1.5, "1612": 0.25})
    text = path.read_text()
    # Without 2019+ attributes the run is a 2016-style one (valid against the only DTD NIST published openly).
    assert '<!DOCTYPE videoAdhocSearchResults SYSTEM "https://www-nlpir.nist.gov/projects/tv2016/dtds/' in text
    root = ET.parse(path).getroot()
    assert root.tag == "videoAdhocSearchResults"
    (run,) = list(root)
    assert run.tag == "videoAdhocSearchRunResult"
    assert run.attrib == {
        "trType": "D",
        "class": "F",
        "pid": "MMS",
        "priority": "2",
        "desc": 'CLIP & "speech"',
    }
    topics = [(t.get("tNum"), t.get("elapsedTime"), [(i.get("seqNum"), i.get("shotId")) for i in t]) for t in run]
    assert topics == [
        ("1611", "1.500", [("1", "shot2_1")]),
        ("1612", "0.250", [("1", "shot1_2"), ("2", "shot1_1")]),
    ]
    assert all(i.tag == "item" for t in run for i in t)


def test_avs_xml_without_task_attribute(tmp_path: Path) -> None:
    path = tmp_path / "run.xml"
    write_avs_xml({"1": [("s_1", 1.0)]}, path, AvsRunInfo(pid="X", task=None, tr_type="A", run_class="M"))
    run = ET.parse(path).getroot()[0]
    assert list(run.attrib) == ["trType", "class", "pid", "priority", "desc"]
    assert run[0].get("elapsedTime") == "0.000"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pid": " "}, "participant id"),
        ({"pid": "X", "priority": 11}, "priority must be 1..10"),
        ({"pid": "X", "tr_type": "d"}, "trType"),
        ({"pid": "X", "run_class": "FF"}, "class"),
    ],
)
def test_avs_run_info_is_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        AvsRunInfo(**kwargs)


def test_avs_xml_needs_a_topic(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at least one topic"):
        write_avs_xml({}, tmp_path / "x.xml", AvsRunInfo(pid="X"))


class FakeSearcher:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def search_segments(self, text: str, k: int, kinds: frozenset[SegmentKind] | None = None) -> list[SegmentHit]:
        self.calls.append((text, k))
        if "drone" in text:
            return [
                hit("/v/00017.mp4", 6.0, 6.5, 0.8),
                hit("/v/00042.mp4", 1.0, 1.5, 0.6),
                hit("/v/00017.mp4", 7.0, 7.5, 0.9),
            ]
        return []


def test_run_topics() -> None:
    searcher = FakeSearcher()
    result = run_topics(
        searcher, [Topic("611", "a drone"), Topic("612", "a cat")], MSB, segments_per_topic=50, max_results=10
    )
    assert searcher.calls == [("a drone", 50), ("a cat", 50)]
    assert result.rankings == {"611": [("shot00017_2", 0.9), ("shot00042_1", 0.6)], "612": []}
    assert result.num_shots == 2
    assert set(result.elapsed) == {"611", "612"} and all(t >= 0 for t in result.elapsed.values())


REAL = Path(__file__).resolve().parents[1].parent / "shared" / "trecvid-real"
DTD_2016 = REAL / "dtd" / "tv2016-reconstructed.dtd"


@pytest.mark.skipif(not DTD_2016.is_file(), reason="../shared/trecvid-real is not present")
def test_default_avs_xml_is_valid_against_the_2016_dtd(tmp_path: Path) -> None:
    path = tmp_path / "run.xml"
    write_avs_xml({"1661": [("shot00001_1", 1.0), ("shot00002_3", 0.5)]}, path, AvsRunInfo(pid="MMS"))
    validate_avs_xml(path, DTD_2016)
    # A 2019+ run carries task/novelty, which the 2016 DTD does not declare: validation says so.
    write_avs_xml({"1661": [("shot00001_1", 1.0)]}, path, AvsRunInfo(pid="MMS", task="M", novelty="C"))
    with pytest.raises(BadInput, match="not valid against"):
        validate_avs_xml(path, DTD_2016)
