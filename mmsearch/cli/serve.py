"""`mmsearch serve`: the HTTP API and web page over one index. Thin: checks the address rules, runs uvicorn."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ..paths import INDEX_ENV, resolve_index_dir
from ..server.discovery import SERVER_ENV, TOKEN_ENV
from .ui import console, err_console, reported_errors, safe, usage_error

if TYPE_CHECKING:
    from ..server.idle import IdleWatch

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


# A token guards everything the server holds: 16 characters of `openssl rand -hex 8` are 64 bits.
MIN_TOKEN_CHARS = 16


def serve_command(
    index: IndexOpt = None,
    host: Annotated[str, typer.Option(help="Address to bind. Anything but loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    token: Annotated[
        str | None,  # noqa: UP007
        typer.Option(
            envvar=TOKEN_ENV,
            help=f"Required on every API and media request when given (at least {MIN_TOKEN_CHARS} characters). "
            f"Prefer ${TOKEN_ENV}: a command line is visible to every user in `ps`.",
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None,  # noqa: UP007
        typer.Option(
            "--allow-host",
            help="Also answer requests for this Host name (repeatable), e.g. the name a reverse proxy forwards.",
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto (GPU when available), cpu or gpu.")] = "auto",
    threads: Annotated[
        int, typer.Option(min=0, help="CPU threads per query (model and FAISS); 0 keeps the libraries' defaults.")
    ] = 1,
    idle_exit: Annotated[
        float, typer.Option(min=0, help="Stop after this many seconds without a request; 0 never stops.")
    ] = 0,
) -> None:
    """Serve the index over HTTP: a search page at / and a JSON API (documented at /docs)."""
    host = host.strip("[]")
    _check_token(host, token)
    with reported_errors():
        index_dir = resolve_index_dir(index)
        sock = bind(host, port)  # before anything is announced: a busy port leaves the running server alone
        port = sock.getsockname()[1]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        url = f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}"
        _run(index_dir, sock, url, host, token, tuple(allow_host or ()), device, threads, idle_exit)


def _check_token(host: str, token: str | None) -> None:
    if token and os.environ.get(TOKEN_ENV) != token:
        err_console.print(
            f"[bold yellow]warning:[/] --token on the command line is visible to every user of this machine "
            f"(`ps`); set ${TOKEN_ENV} instead",
            soft_wrap=True,
        )
    if is_loopback(host):
        return
    if not token:
        raise usage_error(f"refusing to bind {host} without a token: pass --token T or set ${TOKEN_ENV}")
    if len(token) < MIN_TOKEN_CHARS:
        raise usage_error(
            f"the token is {len(token)} characters: at least {MIN_TOKEN_CHARS} are needed to bind {host}"
            " (e.g. `openssl rand -hex 16`)"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; UsageError (one line, exit 2) when the port is taken or the address
    is not one of this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a just-stopped server's TIME_WAIT is no owner
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UsageError(
                f"port {port} on {host} is already in use", hint="stop the other server, or pass --port P"
            ) from e
        raise UsageError(f"cannot listen on {host} port {port}: {e.strerror}") from e
    except (socket.gaierror, UnicodeError) as e:
        sock.close()
        raise UsageError(f"cannot listen on {host!r}: not an address of this machine") from e
    return sock


def _run(
    index_dir: Path,
    sock: socket.socket,
    url: str,
    host: str,
    token: str | None,
    allow_hosts: tuple[str, ...],
    device: str,
    threads: int,
    idle_exit: float = 0,
) -> None:
    import uvicorn

    from ..server.app import ServerConfig, create_app

    watches: list[IdleWatch] = []  # --idle-exit counts from the moment the server is ready

    def ready() -> None:
        console.print(f"serving {safe(str(index_dir))} at [bold]{url}/[/] (API docs at {url}/docs); Ctrl-C stops")
        for watch in watches:
            watch.start()

    config = ServerConfig(
        index_dir=index_dir,
        token=token,
        device=device,
        threads=threads or None,
        announce_url=url,
        host=host,
        allow_hosts=allow_hosts,
        ready=ready,
    )
    app = create_app(config)
    if idle_exit:
        from ..server.idle import add_idle_exit

        watches.append(add_idle_exit(app, idle_exit))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if not server.started:
        raise UsageError("the server did not start (see the lines above)")
