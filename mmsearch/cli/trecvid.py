"""`mmsearch eval` and `mmsearch run`: TRECVID AVS evaluation and run generation from the command line.

Thin commands: parse options, call the library, print. Domain errors (`MMSearchError`) become a one-line
`error: ...` and their exit code through `mmsearch.cli.ui.reported_errors`, as in the other commands; missing
input files are refused by Typer itself (exit 2).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..trecvid.msb import load_msb
from ..trecvid.runfile import AvsRunInfo, run_topics, write_avs_xml, write_trec_run
from ..trecvid.topics import load_topics
from ..trecvid.xinfap import DEFAULT_MAX_RESULTS, PRECISION_RANKS, EvalResult, evaluate
from .ui import reported_errors, safe

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
    if as_json:
        typer.echo(json.dumps(eval_json(result), indent=2))
    else:
        Console().print(eval_table(result))


def run_command(
    topics: Annotated[
        Path,
        typer.Option("--topics", help="NIST topics XML or 'num text' lines.", exists=True, dir_okay=False),
    ],
    msb: Annotated[
        Path,
        typer.Option("--msb", help="Master shot reference: file, or directory of V3C <video>.tsv.", exists=True),
    ],
    index: Annotated[Path, typer.Option("--index", envvar="MMSEARCH_INDEX", help="Index directory to search.")],
    out: Annotated[Path, typer.Option("--out", help="Run file to write.")],
    run_id: Annotated[str, typer.Option("--run-id", help="Run id (last TREC column; XML pid default).")] = "mmsearch",
    max_results: Annotated[
        int, typer.Option("--max-results", min=1, help="Shots per topic (TRECVID AVS: 1000).")
    ] = DEFAULT_MAX_RESULTS,
    fmt: Annotated[RunFormat, typer.Option("--format", help="trec or trecvid-xml.")] = RunFormat.TREC,
    per_topic_k: Annotated[
        int | None,
        typer.Option(
            "--per-topic-k",
            min=1,
            help=f"Segments fetched per topic. Default: {SEGMENTS_PER_SHOT} x max results.",
        ),
    ] = None,
    pid: Annotated[
        str | None, typer.Option("--pid", help="Participant id for trecvid-xml. Default: the run id.")
    ] = None,
    desc: Annotated[str, typer.Option("--desc", help="Run description for trecvid-xml.")] = "mmsearch automatic run",
) -> None:
    # Imported here so the TRECVID commands load even where the search stack is unavailable.
    from mmsearch.search.searcher import Searcher

    with reported_errors():
        # Options and inputs are checked before the (slow) searches start.
        info = AvsRunInfo(pid=pid or run_id, desc=desc) if fmt is RunFormat.TRECVID_XML else None
        topic_list = load_topics(topics)
        reference = load_msb(msb)
        searcher = Searcher.open(Path(index))
        try:
            k = per_topic_k or SEGMENTS_PER_SHOT * max_results
            result = run_topics(searcher, topic_list, reference, k, max_results)
        finally:
            searcher.close()
        if info is None:
            write_trec_run(result.rankings, out, run_id, max_results)
        else:
            write_avs_xml(result.rankings, out, info, result.elapsed, max_results)
    console = Console(stderr=True)
    console.print(f"wrote {result.num_shots} shots for {len(topic_list)} topics to {safe(str(out))}")
    if result.num_shots == 0:
        console.print(
            "[yellow]warning:[/] no hit fell in a shot of the msb; media file names (without extension) "
            "must equal the msb video ids"
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
    }


def eval_table(result: EvalResult) -> Table:
    """Per-topic rows and an `all` row, four decimals as sample_eval.pl prints them."""
    table = Table(title=f"TRECVID xinfAP (max {result.max_results} results)")
    table.add_column("topic")
    for name in (*TABLE_MEASURES, "inum_rel", "num_ret"):
        table.add_column(name, justify="right")
    for topic, scores in result.per_topic.items():
        row = [f"{scores[m]:.4f}" for m in TABLE_MEASURES]
        table.add_row(safe(topic), *row, f"{scores['inum_rel']:.4f}", f"{scores['num_ret']:.0f}")
    means = [f"{result.means[m]:.4f}" for m in TABLE_MEASURES]
    table.add_row("all", *means, f"{result.totals['inum_rel']:.4f}", f"{result.totals['num_ret']:.0f}", style="bold")
    notes = []
    if result.unjudged_topics:
        notes.append(f"run topics without judgments, skipped: {' '.join(result.unjudged_topics)}")
    if result.missing_topics:
        notes.append(f"judged topics missing from the run, not averaged: {' '.join(result.missing_topics)}")
    table.caption = "\n".join(notes) or None
    return table
