"""`mmsearch export` (found moments as a timeline for editing software) and `mmsearch clip` (moments as files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import EXIT_OK, BadInput, MMSearchError, UsageError
from ..paths import resolve_index_dir
from ..search.fusion import DEFAULT_FUSION
from ..types import Moment
from .options import IndexOpt
from .remote import search_via_server
from .serve import ServerOpt
from .ui import console, err_console, reported_errors, safe

if TYPE_CHECKING:
    from ..search.searcher import Query

FORMAT_HELP = "otio, edl (CMX 3600), fcpxml (Final Cut Pro X), xml (Premiere / FCP7), mlt (Shotcut, Kdenlive) or csv."
QueryArg = Annotated[str | None, typer.Argument(metavar="QUERY", help="What to look for, in words (or use --from).")]  # noqa: UP007
FromOpt = Annotated[
    Path | None,  # noqa: UP007
    typer.Option("--from", help="Moments saved by `mmsearch query --json` (or a JSON list of moments)."),
]
FormatOpt = Annotated[str | None, typer.Option("--format", "-f", help=f"{FORMAT_HELP} Default: from --out's suffix.")]  # noqa: UP007
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="The file to write.")]
HandlesOpt = Annotated[float, typer.Option("--handles", help="Seconds added before and after every moment.")]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", help="Number of moments to search for.")]
ModalityOpt = Annotated[str, typer.Option(help="video, audio, image or any.")]
FusionOpt = Annotated[str, typer.Option(help="calibrated, rrf or weighted (as `mmsearch query --fusion`).")]
MomentsArg = Annotated[list[str], typer.Argument(help="PATH@START-END in seconds, e.g. talk.mp4@12.5-20.")]
OutDirOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder for the clips (created if missing).")]
ExactOpt = Annotated[
    bool, typer.Option("--exact", help="Re-encode (H.264) to start on the exact frame; default: stream copy.")
]


def export_cmd(
    out: OutOpt,
    text: QueryArg = None,
    from_json: FromOpt = None,
    fmt: FormatOpt = None,
    handles: HandlesOpt = 0.0,
    top_k: TopKOpt = 10,
    modality: ModalityOpt = "any",
    fusion: FusionOpt = DEFAULT_FUSION,
    index: IndexOpt = None,
    server: ServerOpt = None,
) -> None:
    """Write found moments as a timeline for editing software: one clip per moment, in/out plus handles."""
    from ..export.formats import export_format, export_moments
    from ..search.searcher import Query

    with reported_errors():
        chosen = export_format(fmt or _format_of(out))
        if (text is None) == (from_json is None):
            raise UsageError("give a QUERY or --from results.json (one of them)")
        if from_json is not None:
            title, moments = _read_moments(from_json)
        else:
            title, moments = _search(Query(text=text, top_k=top_k, modality=modality, fusion=fusion), index, server)
        data = export_moments(moments, chosen, title, handles)
        out.write_text(data, encoding="utf-8")
    console.print(f"wrote {len(moments)} moment{'s' if len(moments) != 1 else ''} to {safe(str(out))} ({chosen.about})")


def clip_cmd(moments: MomentsArg, out: OutDirOpt = Path("clips"), exact: ExactOpt = False) -> None:
    """Cut moments out of their files with ffmpeg: NAME_START-END.EXT in --out; keeps going past a bad one."""
    from ..export.clips import cut_clip, parse_clip

    with reported_errors():
        specs = [parse_clip(m) for m in moments]
    failed = 0
    for spec in specs:
        try:
            written = cut_clip(spec, out, exact)
        except MMSearchError as e:
            failed += 1
            err_console.print(f"[bold red]error:[/] {safe(e.message)}", soft_wrap=True)
            continue
        console.print(safe(str(written)))
    if failed:
        raise typer.Exit(1 if failed < len(specs) else 2)
    raise typer.Exit(EXIT_OK)


def _format_of(out: Path) -> str:
    from ..export.formats import FORMATS

    name = out.suffix.lstrip(".").lower()
    if name not in FORMATS:
        raise UsageError(f"cannot tell the format from {out.name!r}", hint=f"give --format: {FORMAT_HELP}")
    return name


def _read_moments(path: Path) -> tuple[str, list[Moment]]:
    from ..search.results import moment_from_json

    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInput(
            f"cannot read moments from {path}: {e}", hint="save them with `mmsearch query ... --json`"
        ) from e
    results = data.get("results") if isinstance(data, dict) else data
    if not isinstance(results, list):
        raise BadInput(f"{path} has no list of results", hint="save them with `mmsearch query ... --json`")
    try:
        moments = [moment_from_json(r) for r in results]
    except (KeyError, TypeError, ValueError) as e:
        raise BadInput(f"{path}: a result lacks {e}", hint="each needs path, kind, start, end, score, text") from e
    title = str(data.get("query", path.stem)) if isinstance(data, dict) else path.stem
    return title, moments


def _search(query: Query, index: Path | None, server: str | None) -> tuple[str, list[Moment]]:
    query.validate()
    moments = search_via_server(query, index, server, explain=False, warn=True)
    return query.label, moments if moments is not None else _search_here(query, index)


def _search_here(query: Query, index: Path | None) -> list[Moment]:
    from ..search.searcher import Searcher

    searcher = Searcher.open(resolve_index_dir(index), resident=False)
    try:
        return searcher.search(query)
    finally:
        searcher.close()


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
    app.command("clip")(clip_cmd)
