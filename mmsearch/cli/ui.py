"""Rich rendering for the CLI: progress, tables, warnings and one-line errors. Library code never imports this."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from ..errors import EXIT_USAGE, MMSearchError
from ..search.results import moment_json as moment_json  # the CLI prints what the HTTP API serves
from ..types import FileFailure, IngestSummary, Moment, StageTimes

# Control characters (C0, DEL, C1) and the invisible reorderers (bidi overrides, line separators): a name
# on disk holding them could recolour the terminal or forge extra output lines, so they are shown escaped.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character written as a Python escape (\\n, \\x1b, \\u202e)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def safe(text: str) -> str:
    """Data (file names, transcripts, messages naming them) ready for rich: controls escaped, markup literal."""
    return escape(printable(text))


console = Console()
err_console = Console(stderr=True)


def setup_logging(verbose: bool) -> None:
    """Our logger on stderr; third-party chatter (download retries, random-weight notices) only with -v."""
    root = logging.getLogger()
    root.handlers[:] = [RichHandler(console=err_console, show_path=False)] if verbose else [logging.NullHandler()]
    root.setLevel(logging.INFO if verbose else logging.CRITICAL)
    ours = logging.getLogger("mmsearch")
    ours.handlers[:] = [] if verbose else [RichHandler(console=err_console, show_path=False, show_time=False)]
    ours.setLevel(logging.INFO if verbose else logging.WARNING)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn domain errors into `error: …` (+ `hint: …`) on stderr and the error's exit code."""
    try:
        yield
    except MMSearchError as e:
        err_console.print(f"[bold red]error:[/] {safe(e.message)}", soft_wrap=True)
        if e.hint:
            err_console.print(f"[dim]hint:[/] {safe(e.hint)}", soft_wrap=True)
        raise typer.Exit(e.exit_code) from e
    except KeyboardInterrupt as e:
        err_console.print("[bold red]interrupted[/] (finished files were committed; rerun to resume)")
        raise typer.Exit(130) from e


def usage_error(message: str) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {safe(message)}", soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def usage_error_line(e: Exception) -> int:
    """Print a command-line usage error (bad option value, unknown option) as one line; returns its exit code."""
    message = getattr(e, "format_message", lambda: str(e))()
    err_console.print(f"[bold red]error:[/] {safe(message)}", soft_wrap=True)
    ctx = getattr(e, "ctx", None)
    command = ctx.command_path if ctx is not None else "mmsearch"
    err_console.print(f"[dim]hint:[/] see `{safe(command)} --help`", soft_wrap=True)
    return EXIT_USAGE


def warn_untrained(model: str) -> None:
    err_console.print(
        f"[bold yellow]WARNING:[/] model [bold]{safe(model)}[/] has UNTRAINED weights: results are "
        "meaningless. Use it only to test the pipeline; pass real weights with --model ARCH:TAG or ARCH:/path.",
        soft_wrap=True,
    )


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


class ProgressReporter:
    """Ingest progress measured in media seconds (video sampled + audio transcribed), so the time left is
    estimated from media, not file counts; names the file being worked on; failures and notes print above."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}", table_column=Column(max_width=40, no_wrap=True)),
            BarColumn(),
            TextColumn("{task.fields[media]}"),
            TextColumn("{task.fields[files]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task("scanning and loading models", total=None, media="", files="")
        self._media_total = 0.0
        self._media_done = 0.0
        self._files_total = 0
        self._files_done = 0
        self._stopping = False
        self._begun = False

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._begun:
            self.progress.stop()

    def begin(self) -> None:
        """The run accepted its options: the display starts (a refused run prints only its error)."""
        self._begun = True
        self.progress.start()

    def planned(self, files: int, media_seconds: float) -> None:
        self._media_total, self._files_total = media_seconds, files
        self.progress.update(self.task, description="indexing", total=media_seconds or files, **self._fields())

    def started(self, path: str) -> None:
        if not self._stopping:
            self.progress.update(self.task, description=safe(os.path.basename(path)))

    def advanced(self, media_seconds: float) -> None:
        self._media_done = min(self._media_done + media_seconds, self._media_total)
        self.progress.update(self.task, completed=self._completed(), **self._fields())

    def file_done(self, path: str) -> None:
        self._files_done += 1
        self.progress.update(self.task, completed=self._completed(), **self._fields())

    def file_failed(self, failure: FileFailure) -> None:
        self.progress.console.print(f"[red]failed:[/] {safe(failure.path)}: {safe(failure.reason)}", soft_wrap=True)

    def note(self, path: str, message: str) -> None:
        self.progress.console.print(f"[yellow]note:[/] {safe(path)}: {safe(message)}", soft_wrap=True)

    def interrupted(self) -> None:
        if not self._stopping:
            self._stopping = True
            self.progress.update(self.task, description="stopping")
        err_console.print("[bold yellow]Ctrl-C:[/] finishing current files… (committing what is done)", soft_wrap=True)

    def _completed(self) -> float:
        return self._media_done if self._media_total else float(self._files_done)

    def _fields(self) -> dict[str, Any]:
        media = f"{_clock(self._media_done)}/{_clock(self._media_total)} media" if self._media_total else ""
        return {"media": media, "files": f"{self._files_done}/{self._files_total} files"}


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def time_range(start: float | None, end: float | None) -> str:
    if start is None:
        return "—"
    return f"{_clock(start)}–{_clock(end)}"


def print_summary(summary: IngestSummary) -> None:
    t = summary.times
    rate = summary.media_seconds / t.total if t.total > 0 else 0.0
    console.print(
        f"[bold green]indexed[/] {summary.new_files} new file(s), {summary.embedded} segment(s) embedded; "
        f"{summary.unchanged_files} unchanged, {summary.removed_files} removed; index now holds "
        f"{summary.files} file(s), {summary.segments} segment(s) in {safe(summary.index)}",
        soft_wrap=True,
    )
    if summary.device:
        console.print(f"[dim]embedded on {summary.device}, frames decoded with {summary.decoder}[/]")
    console.print(
        f"[dim]time {t.total:.1f}s (load {t.load:.1f}, discover {t.discover:.1f}, decode {t.decode:.1f}, shots {t.shots:.1f}, transcribe "
        f"{t.transcribe:.1f}, embed {t.embed:.1f}, store {t.store:.1f}{_extra_times(t)}); {rate:.1f} media-s/s[/]"
    )
    if summary.failed:
        # Each failure already got its one line (path: reason) from the progress reporter as it happened.
        err_console.print(f"[bold red]{len(summary.failed)} file(s) failed[/] (listed above)")


def _extra_times(t: StageTimes) -> str:
    """The optional stages (ocr, text, audio, faces), only when they ran."""
    return "".join(f", {name} {getattr(t, name):.1f}" for name in ("ocr", "text", "audio", "faces") if getattr(t, name))


def _channels_text(moment: Moment) -> str:
    if moment.parts:
        return "\n".join(
            f"part {i} {time_range(p.start, p.end)}: {_channels_text(p)}".replace("\n", "; ")
            for i, p in enumerate(moment.parts, start=1)
        )
    return "\n".join(
        f"{name}#{c.rank} {c.score:.3f}" + (f" e={c.evidence:.1f}" if c.evidence is not None else "")
        for name, c in moment.channels.items()
    )


def short_path(path: str) -> str:
    """Paths under the working directory print relative to it (JSON keeps them absolute)."""
    cwd = os.getcwd().rstrip("/") + "/"
    return path[len(cwd) :] if path.startswith(cwd) else path


def moments_table(label: str, moments: Sequence[Moment], explain: bool = False) -> Table:
    table = Table(title=f"results for {safe(repr(label))}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("path", overflow="fold", min_width=12)
    table.add_column("kind")
    table.add_column("time", no_wrap=True)
    table.add_column("score", justify="right")
    table.add_column("text", overflow="fold")
    if explain:
        table.add_column("channels (#rank score)", no_wrap=True)
    for rank, m in enumerate(moments, start=1):
        table.add_row(
            str(rank),
            safe(short_path(m.path)),
            m.kind.value,
            time_range(m.start, m.end),
            f"{m.score:.3f}",
            _evidence_text(m),
            *([escape(_channels_text(m))] if explain else []),
        )
    return table


def _snippet(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _evidence_text(m: Moment) -> str:
    """The moment's text; when it merged several kinds of words, one line per piece: kind, its own time, words
    (on-screen text and speech apart, each with its time)."""
    pieces = [p for p in m.evidence if p.text]
    if len({p.kind for p in pieces}) < 2:
        return safe(_snippet(m.text or ""))
    lines = []
    for p in pieces:
        side = f" {('L', 'R')[p.channel]}" if p.channel in (0, 1) else ""
        lines.append(f"{p.kind.value}{side} {time_range(p.start, p.end)}: {_snippet(p.text or '')}")
    return "\n".join(safe(line) for line in lines)
