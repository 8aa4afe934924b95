"""`mmsearch serve`: the HTTP API and web page over one index. Thin: checks the address rules, runs uvicorn."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from ..paths import INDEX_ENV, resolve_index_dir
from ..server.discovery import SERVER_ENV, TOKEN_ENV
from .ui import console, reported_errors, usage_error

IndexOpt = Annotated[
    Path | None,  # noqa: UP007 - typer needs Optional on 3.10
    typer.Option(
        "--index", "-i", envvar=INDEX_ENV, help="Index directory. Default: $MMSEARCH_INDEX, else ./indexes/default."
    ),
]

ServerOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option(
        "--server", envvar=SERVER_ENV, help="URL of a running `mmsearch serve` (default: the index's own, if any)."
    ),
]


def register(app: typer.Typer) -> None:
    """Add `serve` to the mmsearch CLI."""
    app.command("serve")(serve_command)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def serve_command(
    index: IndexOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind. Anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    token: Annotated[
        str | None,  # noqa: UP007
        typer.Option(envvar=TOKEN_ENV, help="Required on every API and media request when given."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto (GPU when available), cpu or gpu.")] = "auto",
    threads: Annotated[
        int, typer.Option(min=0, help="CPU threads per query (model and FAISS); 0 keeps the libraries' defaults.")
    ] = 1,
) -> None:
    """Serve the index over HTTP: a search page at / and a JSON API (documented at /docs)."""
    import uvicorn

    from ..server.app import ServerConfig, create_app

    if not is_loopback(host) and not token:
        raise usage_error(f"refusing to bind {host} without a token: pass --token T or set ${TOKEN_ENV}")
    with reported_errors():
        index_dir = resolve_index_dir(index)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}"
        config = ServerConfig(
            index_dir=index_dir,
            token=token,
            device=device,
            threads=threads or None,
            announce_url=url,
        )
        console.print(f"serving {index_dir} at [bold]{url}/[/] (API docs at {url}/docs); Ctrl-C stops")
        uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
