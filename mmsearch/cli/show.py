"""`mmsearch show PATH`: what the indexer saw in one file (shots, transcript, text on screen, vectors per space)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import CatalogOpt, IndexOpt, JsonOpt, index_location
from .ui import console, print_json, reported_errors, safe


def register(app: typer.Typer) -> None:
    app.command("show")(show_command)


def _time(span: dict[str, object]) -> str:
    start, end = span["start"], span["end"]
    return f"{start:7.2f}-{end:7.2f}s" if isinstance(start, float) and isinstance(end, float) else "-"


def show_command(
    path: Annotated[Path, typer.Argument(help="An indexed file.")],
    index: IndexOpt = None,
    catalog: CatalogOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show what the indexer saw in one file: shots, transcript, on-screen text, face tracks, vectors per space."""
    from ..index.show import describe_file

    with reported_errors():
        info = describe_file(index_location(index, catalog), path)
    if json_out:
        print_json(info)
        return
    for key in ("path", "kind", "duration", "has_audio", "asr", "language"):
        console.print(f"[bold]{key}[/]: {safe(str(info[key]))}")
    for key in ("segments", "vectors"):
        counts = info[key]
        assert isinstance(counts, dict)
        console.print(f"[bold]{key}[/]: {safe(', '.join(f'{k} {v}' for k, v in counts.items()) or 'none')}")
    for key in ("shots", "speech", "subtitles", "ocr", "faces"):
        rows = info[key]
        assert isinstance(rows, list)
        console.print(f"[bold]{key}[/] ({len(rows)}):")
        for row in rows:
            text = f"  {safe(str(row['text']))}" if "text" in row else ""
            if "person_id" in row:
                text = f"  person {row['person_id']}" + (f" ({safe(str(row['person']))})" if row["person"] else "")
            console.print(f"  {_time(row)}{_heard(row)}{text}")


def _heard(row: dict[str, object]) -> str:
    """' [L en]': the channel (L/R) and language a segment was heard in, when known."""
    tags = [("L", "R")[int(str(row["channel"]))] if "channel" in row else "", str(row.get("language") or "")]
    tags = [t for t in tags if t]
    return f"  [{safe(' '.join(tags))}]" if tags else ""
