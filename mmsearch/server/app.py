"""The FastAPI application: one LiveIndex per server (made in the lifespan), routes, token check, JSON errors.

Errors of every kind leave as `{"error": ..., "hint": ...}` with a fitting status; a traceback never does.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import (
    BackendUnavailable,
    BadInput,
    CorruptIndex,
    IndexLocked,
    IndexNotFound,
    MissingExtra,
    MMSearchError,
    PersonNotFound,
    UsageError,
)
from ..paths import display_path
from . import discovery
from .docs import DOCS_ASSETS, add_docs
from .export_routes import router as export_router
from .guard import BodyLimit, HostCheck, HostPolicy, SecurityHeaders
from .live import IndexGone, LiveIndex, limit_threads
from .media import Changed, MediaTypes, NotFound, TooLargeToDraw
from .people import people_api
from .query_images import UploadTooLarge
from .ranges import RangeNotSatisfiable
from .routes import PAGE_PATHS, api, page

log = logging.getLogger(__name__)

# 16 MiB: a camera JPEG or PNG screenshot fits; anything bigger is not a query image.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
# A multipart body holds the image plus its part headers and the query's form fields: a few kB at most.
MULTIPART_OVERHEAD = 64 * 1024
TOKEN_COOKIE = "mmsearch_token"
# Files that hold nothing of the index (the page's script and style, the docs' Swagger UI): no token needed.
PUBLIC_PREFIXES = ("/static/", DOCS_ASSETS + "/")


# Most specific first: the first class an error is an instance of decides its status.
ERROR_STATUS: tuple[tuple[type[MMSearchError], int], ...] = (
    (Changed, 410),
    (NotFound, 404),
    (IndexGone, 503),
    (IndexNotFound, 404),
    (TooLargeToDraw, 422),
    (UploadTooLarge, 413),
    (RangeNotSatisfiable, 416),
    (BadInput, 400),
    (PersonNotFound, 404),
    (IndexLocked, 409),
    (MissingExtra, 501),
    (UsageError, 422),
    (CorruptIndex, 503),
    (BackendUnavailable, 503),
)


@dataclass(frozen=True)
class ServerConfig:
    index_dir: Path
    token: str | None = None
    device: str = "auto"  # --device: where the model runs (auto, cpu, cuda, gpu, mps)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    threads: int | None = 1  # per query, for the model and FAISS; None leaves the libraries' defaults
    # Where clients reach this server; written to the index's server file for `mmsearch query`. None: not announced.
    announce_url: str | None = None
    # The address the server is bound to and the extra Host names it answers (--allow-host): see guard.HostPolicy.
    host: str = "127.0.0.1"
    allow_hosts: tuple[str, ...] = ()
    # Called once the index and every model a query needs are loaded, just before requests are answered.
    ready: Callable[[], None] | None = None


def create_app(config: ServerConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if config.threads is not None:
            limit_threads(config.threads)
        live = LiveIndex(config.index_dir, config.device)
        live.open()
        live.warm_up()
        app.state.live = live
        announced = discovery.announce(config.index_dir, config.announce_url) if config.announce_url else None
        if config.ready is not None:
            config.ready()
        try:
            yield
        finally:
            if announced is not None:
                discovery.withdraw(announced)
            live.close()

    app = FastAPI(
        title="mmsearch",
        version=__version__,
        description="Search video, audio and images for moments, by text, by image or by example.",
        lifespan=lifespan,
        docs_url=None,  # add_docs serves /docs without a CDN
        redoc_url=None,  # ReDoc loads its logo from its CDN: not served
    )
    app.state.config = config
    app.state.media_types = MediaTypes()
    app.include_router(api)
    app.include_router(people_api)
    app.include_router(export_router)
    app.include_router(page)
    add_docs(app)
    _add_error_handlers(app)
    if config.token:
        _add_token_check(app, config.token)
    # Added last = runs first: headers on every answer, then the Host check, then the body limit.
    app.add_middleware(BodyLimit, limit=config.max_upload_bytes + MULTIPART_OVERHEAD)
    app.add_middleware(HostCheck, policy=HostPolicy(config.host, config.allow_hosts))
    app.add_middleware(SecurityHeaders)
    return app


def error_response(status: int, error: str, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "hint": hint}, status_code=status)


# The library's messages are written for the CLI: they name its flags (`--top-k`) and the index directory.
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
_FLAG_PARAMS = {"top-k": "top_k", "image": "image (POST)"}


def public_text(text: str, index_dir: Path) -> str:
    """A library message fit for an HTTP client: API parameter names for CLI flags, no server paths."""
    text = _FLAG.sub(lambda m: _FLAG_PARAMS.get(m.group(1), m.group(1).replace("-", "_")), text)
    for shown in {os.fsdecode(index_dir.resolve()), os.fsdecode(index_dir), display_path(index_dir)}:
        if len(shown) > 1:
            text = text.replace(shown, "this server's index directory")
    return text


def public_hint(hint: str | None) -> str | None:
    """Hints that tell a CLI user which flag to pass mean nothing to an HTTP client: dropped."""
    if hint is None or _FLAG.search(hint):
        return None
    return hint


def _add_error_handlers(app: FastAPI) -> None:
    config: ServerConfig = app.state.config

    @app.exception_handler(MMSearchError)
    async def domain_error(request: Request, exc: MMSearchError) -> JSONResponse:
        status = next((code for kind, code in ERROR_STATUS if isinstance(exc, kind)), 500)
        response = error_response(status, public_text(exc.message, config.index_dir), public_hint(exc.hint))
        if isinstance(exc, RangeNotSatisfiable):
            response.headers["Content-Range"] = f"bytes */{exc.size}"  # RFC 9110 §15.5.17
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        hint = {404: "see /docs for the API", 405: "see /docs for the API", 413: "send a smaller image"}.get(
            exc.status_code
        )
        return error_response(exc.status_code, str(exc.detail), hint)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return error_response(422, f"invalid request: {problems}", "see /docs for the parameters")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__})", "the server log has the details")


def _add_token_check(app: FastAPI, token: str) -> None:
    """Every request but the page shell needs the token: `Authorization: Bearer T`, `?token=T` or the cookie.

    Opening the page with `?token=T` sets the cookie, so that `<video>` and `<img>` (which cannot send headers)
    carry it from then on.
    """

    def given(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)

    @app.middleware("http")
    async def check_token(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        sent = given(request)
        ok = sent is not None and secrets.compare_digest(sent.encode(), token.encode())
        public = request.url.path in PAGE_PATHS or request.url.path.startswith(PUBLIC_PREFIXES)
        if not ok and not public:
            return error_response(
                401, "this server needs a token", "send `Authorization: Bearer TOKEN`, or open /?token=TOKEN"
            )
        response = await call_next(request)
        if ok and request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response
