"""`mmsearch check` and `mmsearch remove`: keep an index consistent and trim it. Thin commands over
`check.py` and `remove.py`; domain errors become one-line messages through `reported_errors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import EXIT_OK, EXIT_PARTIAL
from .options import CatalogOpt, IndexOpt, JsonOpt, index_location
from .ui import console, err_console, print_json, reported_errors, safe


def register(app: typer.Typer) -> None:
    """Add `check` and `remove` to the mmsearch CLI."""
    app.command("check")(check_command)
    app.command("remove")(remove_command)


def check_command(
    index: IndexOpt = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Fix what can be fixed (takes the write lock; shared: the planning lock).")
    ] = False,
    catalog: CatalogOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Verify that catalog, vectors and manifest agree; exit 1 when problems are found, 2 when unusable."""
    from ..index.check import check_index
    from ..index.repair import repair_index

    with reported_errors():
        location = index_location(index, catalog)
        report = repair_index(location) if repair else check_index(location)
    if json_out:
        print_json(report.to_json())
    else:
        for line in report.repaired:
            console.print(f"[green]repaired:[/] {safe(line)}", soft_wrap=True)
        for note in report.notes:
            console.print(f"[dim]note:[/] {safe(note)}", soft_wrap=True)
        for path in report.stale:
            console.print(f"[yellow]stale:[/] {safe(path)}: indexed but no longer on disk", soft_wrap=True)
        for problem in report.problems:
            fix = " (fixable with --repair)" if problem.fixable and not repair else ""
            err_console.print(f"[bold red]problem:[/] {safe(problem.message)}{fix}", soft_wrap=True)
        if not report.problems:
            console.print(
                f"[bold green]ok[/]: {report.files} file(s), {report.segments} segment(s) ({_counts(report.segment_kinds)}), "
                f"vectors {_counts(report.space_vectors)}, generation {report.generation}, schema {report.schema_version}"
            )
    raise typer.Exit(report.exit_code)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def remove_command(
    paths: Annotated[list[Path], typer.Argument(help="Indexed files or folders to drop (need not exist).")],
    index: IndexOpt = None,
    catalog: CatalogOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove files, or everything under a folder, from the index."""
    from ..index.remove import remove_paths

    with reported_errors():
        summary = remove_paths(index_location(index, catalog), paths)
    if json_out:
        print_json(summary.to_json())
    else:
        console.print(
            f"[bold green]removed[/] {summary.removed_files} file(s), {summary.removed_segments} segment(s); "
            f"index now holds {summary.files} file(s), {summary.segments} segment(s)",
            soft_wrap=True,
        )
        for f in summary.failed:
            err_console.print(f"[red]failed:[/] {safe(f.path)}: {safe(f.reason)}", soft_wrap=True)
    raise typer.Exit(EXIT_PARTIAL if summary.failed else EXIT_OK)
