"""What every request passes before a route sees it, as plain ASGI middleware (outermost first):

- HostCheck: only `Host` values this server is meant to be reached by (DNS rebinding: a web page whose name
  re-resolves to 127.0.0.1 sends its own name as Host); others get 421 JSON, on every route, the page included.
- BodyLimit: a request body over the limit is refused on its `Content-Length` before a byte is read, and a body
  without one (chunked) is counted as it arrives and refused at the first byte past the limit, so nothing past
  the limit is ever spooled to disk.
- SecurityHeaders: `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer` on every response; the
  page and /docs get a strict Content-Security-Policy (this server only, no inline script or style, never
  framed); everything else (media, thumbnails, JSON) `sandbox`, so that a file served by mistake as a document
  runs no script on this origin.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The loopback names a browser sends for a server bound to a loopback address.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = ("0.0.0.0", "::", "")

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
OTHER_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
HTML_PATHS = frozenset({"/", "/docs"})


class BodyTooLarge(HTTPException):
    """A request body over the server's limit, raised while it is read (HTTP 413). An HTTPException, because
    FastAPI turns any other exception met while parsing a body into a 400."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def _json(status: int, error: str, hint: str | None) -> tuple[dict[str, object], bytes]:
    body = json.dumps({"error": error, "hint": hint}).encode()
    start: dict[str, object] = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, body


async def _refuse(send: Send, status: int, error: str, hint: str | None) -> None:
    start, body = _json(status, error, hint)
    await send(start)
    await send({"type": "http.response.body", "body": body})


def split_host(value: str) -> tuple[str, str | None]:
    """`'[::1]:8000'` -> `('[::1]', '8000')`, `'Example.ORG.'` -> `('example.org', None)`."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        port = rest[1:] if rest.startswith(":") else None
        return name + "]", port or None
    name, colon, port = value.rpartition(":")
    if not colon:
        name, port = value, ""
    return name.rstrip("."), port or None


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return None


class HostPolicy:
    """Which Host names a server bound to `bind` answers: its own address, loopback names, and `allowed`.

    A wildcard bind (0.0.0.0, ::) answers any IP literal (a browser sends an IP as Host only when it connected
    to that IP, so no rebinding goes through one); names other than localhost only when allowed.
    """

    def __init__(self, bind: str, allowed: Iterable[str] = ()) -> None:
        self.bind = bind
        self.names = frozenset(split_host(n)[0] for n in (*LOOPBACK_NAMES, *allowed))
        bound = _ip(bind)
        self.any_ip = bind.strip("[]") in WILDCARD_BINDS
        self.bound_ip = bound

    def allows(self, host: str | None) -> bool:
        if not host:
            return False
        name, port = split_host(host)
        if port is not None and not port.isdigit():
            return False
        if name in self.names:
            return True
        ip = _ip(name)
        if ip is None:
            return False
        return self.any_ip or ip.is_loopback or ip == self.bound_ip


class HostCheck:
    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        if self.policy.allows(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = (host or "")[:100].encode("ascii", "backslashreplace").decode("ascii")
        await _refuse(
            send,
            421,
            f"this server does not answer for the host name {shown!r}",
            "open it by its own address (e.g. http://127.0.0.1:PORT/); its operator can allow more host names",
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            text = declared.decode("latin-1").strip()
            if not text.isdigit() or len(text) > 18:
                await _refuse(send, 400, "Content-Length is not a number of bytes", None)
                return
            if int(text) > self.limit:
                await _refuse(send, 413, self._message(), "send a smaller image")
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return f"the request is larger than {self.limit} bytes"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = PAGE_CSP if scope["path"] in HTML_PATHS else OTHER_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"content-security-policy", csp.encode()),
                ]
                if scope["path"] in HTML_PATHS:
                    extra.append((b"x-frame-options", b"DENY"))
                headers = list(message.get("headers", [])) + [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
