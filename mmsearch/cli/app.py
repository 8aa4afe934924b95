"""The `mmsearch` command: thin Typer commands that parse, call the library and print.

Exit codes: 0 success; 1 some inputs failed but the rest was indexed; 2 usage error or unusable input.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from ..errors import EXIT_OK, EXIT_USAGE
from ..ingest.speech import exit_now_if_abandoned
from ..models.spec import KNOWN_MODELS
from . import export as export_commands
from . import ingest as ingest_commands
from . import maintenance as maintenance_commands
from . import people as people_commands
from . import query as query_commands
from . import serve as serve_commands
from . import show as show_commands
from . import trecvid as trecvid_commands
from .options import CatalogOpt, IndexOpt, JsonOpt, index_location
from .ui import console, print_json, reported_errors, safe, setup_logging, usage_error_line

app = typer.Typer(
    name="mmsearch",
    help="Cross-modal media search: index video, audio and images; find moments by text or by image.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"mmsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details to stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    setup_logging(verbose)


ingest_commands.register(app)
query_commands.register(app)


@app.command("info")
def info_cmd(index: IndexOpt = None, catalog: CatalogOpt = None, json_out: JsonOpt = False) -> None:
    """Show what an index holds: files, segments by kind, model."""
    from ..index.info import index_info

    with reported_errors():
        info = index_info(index_location(index, catalog))
    if json_out:
        print_json(info)
        return
    for key, value in info.items():
        console.print(f"[bold]{key}[/]: {safe(_shown(value))}")


def _shown(value: object) -> str:
    """`{"frame": 3, "speech": 2}` -> "frame 3, speech 2"; nested dicts in parentheses."""
    if isinstance(value, dict):
        return ", ".join(f"{k} ({_shown(v)})" if isinstance(v, dict) else f"{k} {v}" for k, v in value.items())
    return str(value)


@app.command("models")
def models_cmd(json_out: JsonOpt = False) -> None:
    """List recommended model specs for --model."""
    if json_out:
        print_json([{"spec": m.spec, "dim": m.dim, "note": m.note} for m in KNOWN_MODELS])
        return
    for m in KNOWN_MODELS:
        console.print(f"[bold]{m.spec}[/]  dim={m.dim}  {m.note}")
    console.print("Any open_clip ARCH:TAG works, and ARCH:/path/to/checkpoint for local weights.")


trecvid_commands.register(app)
maintenance_commands.register(app)
serve_commands.register(app)
show_commands.register(app)
people_commands.register(app)
export_commands.register(app)


# click's UsageError (bad option value, unknown option), wherever this typer version takes click from.
_CLICK_USAGE_ERROR: type[Exception] = typer.BadParameter.__mro__[1]


def main() -> None:
    """The console entry point: click's usage errors (`--top-k abc`) become one `error: …` line, exit 2."""
    try:
        code = app(standalone_mode=False)
    except _CLICK_USAGE_ERROR as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            e.show()  # type: ignore[attr-defined]  # bare `mmsearch`: the help, as click shows it
            raise SystemExit(EXIT_USAGE) from None
        raise SystemExit(usage_error_line(e)) from None
    except typer.Abort:  # a Ctrl-C that no command caught
        code = 130
    code = code if isinstance(code, int) else EXIT_OK
    exit_now_if_abandoned(code)  # Ctrl-C left Whisper inside a chunk: finalizing around it would abort
    raise SystemExit(code)
