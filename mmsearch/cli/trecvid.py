"""`mmsearch eval` and `mmsearch run`: TRECVID AVS evaluation and run generation from the command line.

Thin commands: parse options, call the library, print. Domain errors (`MMSearchError`) become a one-line
`error: ...` and their exit code through `mmsearch.cli.ui.reported_errors`, as in the other commands; missing
input files are refused by Typer itself (exit 2).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import BadInput
from ..trecvid.msb import MasterShotReference, load_msb, probe_frame_rate, video_id_for_path
from ..trecvid.runfile import AvsRunInfo, run_topics, validate_avs_xml, write_avs_xml, write_trec_run
from ..trecvid.topics import Topic, load_topics
from ..trecvid.xinfap import DEFAULT_MAX_RESULTS, PRECISION_RANKS, EvalResult, evaluate, shift_topic
from ..types import MediaKind
from .ui import reported_errors

# A shot holds several sampled frames and transcript spans, so a run of N shots needs more than N segments.
SEGMENTS_PER_SHOT = 10
# Columns of the eval table; the rest is in --json.
TABLE_MEASURES: tuple[str, ...] = ("infAP", "infNDCG", "iP10", "iP100")
# AVS papers report iP@10/100/1000 whatever the cut; sample_eval.pl only has 1000 when max results is 1000.
REPORTED_RANKS: tuple[int, ...] = (*PRECISION_RANKS, 1000)


class RunFormat(str, Enum):
    TREC = "trec"
    TRECVID_XML = "trecvid-xml"


def register(app: typer.Typer) -> None:
    """Add the TRECVID commands to the mmsearch CLI."""
    app.command("eval", help="Score a TREC run against TRECVID qrels with inferred AP (sample_eval.pl).")(eval_command)
    app.command("run", help="Search every topic of a topics file and write a TRECVID run.")(run_command)


def eval_command(
    qrels: Annotated[
        Path,
        typer.Option(
            "--qrels",
            help="sample_eval qrels: topic iter shotId stratum judgment.",
            exists=True,
            dir_okay=False,
        ),
    ],
    run: Annotated[
        Path,
        typer.Option("--run", help="TREC run: topic Q0 shotId rank score runId.", exists=True, dir_okay=False),
    ],
    max_results: Annotated[
        int, typer.Option("--max-results", min=1, help="Shots scored per topic (TRECVID AVS: 1000).")
    ] = DEFAULT_MAX_RESULTS,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    with reported_errors():
        result = evaluate(qrels, run, max_results=max_results, precision_ranks=REPORTED_RANKS)
    if result.topic_offset:
        Console(stderr=True).print(
            f"note: no run topic is judged as numbered; scored with topic numbers {result.topic_offset:+d} "
            "(published AVS topic lists say 611-680 where NIST's qrels say 1611-1680)",
            soft_wrap=True,
        )
    if as_json:
        typer.echo(json.dumps(eval_json(result), indent=2))
    else:
        Console().print(eval_table(result))


TopicsOpt = Annotated[
    Path, typer.Option("--topics", help="NIST topics XML or 'num text' lines.", exists=True, dir_okay=False)
]
MsbOpt = Annotated[
    Path,
    typer.Option(
        "--msb", help="Master shot reference: file, or directory of V3C <video>.tsv / IACC <video>.msb.", exists=True
    ),
]
RunIndexOpt = Annotated[Path, typer.Option("--index", envvar="MMSEARCH_INDEX", help="Index directory to search.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Run file to write.")]
RunIdOpt = Annotated[str, typer.Option("--run-id", help="Run id (last TREC column; XML pid default).")]
MaxOpt = Annotated[int, typer.Option("--max-results", min=1, help="Shots per topic (TRECVID AVS: 1000).")]
FormatOpt = Annotated[RunFormat, typer.Option("--format", help="trec or trecvid-xml.")]
PerTopicOpt = Annotated[
    int | None,
    typer.Option(
        "--per-topic-k", min=1, help=f"Segments fetched per topic. Default: {SEGMENTS_PER_SHOT} x max results."
    ),
]
OffsetOpt = Annotated[
    int, typer.Option("--topic-offset", help="Added to numeric topic numbers in the run (e.g. 1000: 661 -> 1661).")
]
FpsOpt = Annotated[
    float | None,
    typer.Option("--fps", min=0.001, help="Frame rate for frame-numbered msb files. Default: probed from the video."),
]
PidOpt = Annotated[str | None, typer.Option("--pid", help="trecvid-xml: participant id. Default: the run id.")]
DescOpt = Annotated[str, typer.Option("--desc", help="trecvid-xml: run description.")]
PriorityOpt = Annotated[int, typer.Option("--priority", help="trecvid-xml: judging priority 1..10.")]
TrTypeOpt = Annotated[str, typer.Option("--tr-type", help="trecvid-xml: training type (A, D, E, F).")]
ClassOpt = Annotated[str, typer.Option("--class", help="trecvid-xml: F fully automatic, M manual.")]
TaskOpt = Annotated[str | None, typer.Option("--task", help="trecvid-xml (2019+): M main, P progress.")]
NoveltyOpt = Annotated[str | None, typer.Option("--novelty", help="trecvid-xml (2019+): novelty letter.")]
AlgoOpt = Annotated[str | None, typer.Option("--algo", help="trecvid-xml (2022+): algorithm name.")]
DtdOpt = Annotated[
    Path | None,
    typer.Option("--dtd", exists=True, dir_okay=False, help="trecvid-xml: validate the written run against it."),
]


def run_command(
    topics: TopicsOpt,
    msb: MsbOpt,
    index: RunIndexOpt,
    out: OutOpt,
    run_id: RunIdOpt = "mmsearch",
    max_results: MaxOpt = DEFAULT_MAX_RESULTS,
    fmt: FormatOpt = RunFormat.TREC,
    per_topic_k: PerTopicOpt = None,
    topic_offset: OffsetOpt = 0,
    fps: FpsOpt = None,
    pid: PidOpt = None,
    desc: DescOpt = "mmsearch automatic run",
    priority: PriorityOpt = 1,
    tr_type: TrTypeOpt = "D",
    run_class: ClassOpt = "F",
    task: TaskOpt = None,
    novelty: NoveltyOpt = None,
    algo: AlgoOpt = None,
    dtd: DtdOpt = None,
) -> None:
    # Imported here so the TRECVID commands load even where the search stack is unavailable.
    from mmsearch.search.searcher import Searcher

    with reported_errors():
        # Options and inputs are checked before the (slow) searches start.
        info = None
        if fmt is RunFormat.TRECVID_XML:
            info = AvsRunInfo(pid or run_id, priority, tr_type, run_class, task, desc, novelty, algo)
        topic_list = [Topic(shift_topic(t.num, topic_offset), t.text) for t in load_topics(topics)]
        searcher = Searcher.open(Path(index))
        try:
            videos = _indexed_videos(searcher)
            reference = load_msb(msb, fps if fps is not None else _probe_from(videos))
            _check_coverage(videos, reference, msb)
            k = per_topic_k or SEGMENTS_PER_SHOT * max_results
            result = run_topics(searcher, topic_list, reference, k, max_results)
        finally:
            searcher.close()
        if result.num_shots == 0:
            raise BadInput(
                f"no hit of any topic fell in a shot of {msb}; nothing written",
                hint="media file names (without extension) must equal the msb video ids",
            )
        if info is None:
            write_trec_run(result.rankings, out, run_id, max_results)
        else:
            write_avs_xml(result.rankings, out, info, result.elapsed, max_results)
            if dtd is not None:
                validate_avs_xml(out, dtd)
    Console(stderr=True).print(f"wrote {result.num_shots} shots for {len(topic_list)} topics to {out}")


def _indexed_videos(searcher: Any) -> dict[str, str]:
    """Video id (file name without extension, as msb files name videos) -> indexed path, for indexed videos."""
    return {video_id_for_path(f.path): f.path for f in searcher.catalog.files() if f.kind is MediaKind.VIDEO}


def _probe_from(videos: dict[str, str]) -> Callable[[str], float | None]:
    def rate(video: str) -> float | None:
        return probe_frame_rate(videos[video]) if video in videos else None

    return rate


def _check_coverage(videos: dict[str, str], reference: MasterShotReference, msb: Path) -> None:
    """A run over an index that holds none of the msb's videos can only be empty: refuse it up front."""
    if not set(videos) & set(reference.videos):
        sample = ", ".join(sorted(reference.videos)[:3])
        raise BadInput(
            f"the index holds no video of the msb {msb} ({len(reference.videos)} videos, e.g. {sample})",
            hint="index the collection's videos; their file names without extension must be the msb video ids",
        )


def eval_json(result: EvalResult) -> dict[str, Any]:
    return {
        "infAP": result.means["infAP"],
        "infNDCG": result.means["infNDCG"],
        "num_topics": result.num_topics,
        "max_results": result.max_results,
        "means": result.means,
        "totals": result.totals,
        "per_topic": result.per_topic,
        "unjudged_topics": list(result.unjudged_topics),
        "missing_topics": list(result.missing_topics),
        "topic_offset": result.topic_offset,
    }


def eval_table(result: EvalResult) -> Table:
    """Per-topic rows and an `all` row, four decimals as sample_eval.pl prints them."""
    table = Table(title=f"TRECVID xinfAP (max {result.max_results} results)")
    table.add_column("topic")
    for name in (*TABLE_MEASURES, "inum_rel", "num_ret"):
        table.add_column(name, justify="right")
    for topic, scores in result.per_topic.items():
        row = [f"{scores[m]:.4f}" for m in TABLE_MEASURES]
        table.add_row(topic, *row, f"{scores['inum_rel']:.4f}", f"{scores['num_ret']:.0f}")
    means = [f"{result.means[m]:.4f}" for m in TABLE_MEASURES]
    table.add_row("all", *means, f"{result.totals['inum_rel']:.4f}", f"{result.totals['num_ret']:.0f}", style="bold")
    notes = []
    if result.unjudged_topics:
        notes.append(f"run topics without judgments, skipped: {' '.join(result.unjudged_topics)}")
    if result.missing_topics:
        notes.append(f"judged topics missing from the run, not averaged: {' '.join(result.missing_topics)}")
    table.caption = "\n".join(notes) or None
    return table
