"""HTTP Range requests on media, decided here by RFC 9110 §14 and answered by Starlette's FileResponse.

Starlette alone answers a Range header it cannot use with a plain-text 400 or an empty 416. Here instead:
- a unit other than `bytes`, or a range set that does not parse (`bytes=abc`, `bytes=9-2`): the header is
  ignored and the whole file is sent (200), as §14.2 requires for an unknown unit and allows for an invalid set;
- a valid set of which no range starts inside the file (`bytes=SIZE-`, `bytes=-0`): RangeNotSatisfiable, which
  the app turns into 416 with `Content-Range: bytes */SIZE` and the usual JSON error body;
- otherwise the satisfiable ranges are served (206), the unsatisfiable ones of the set dropped (§14.1.1).
"""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import FileResponse
from starlette.types import Receive, Scope, Send

from ..errors import MMSearchError
from .media import Opened

_RANGE_SPEC = re.compile(r"(\d*)[ \t]*-[ \t]*(\d*)")
# Past this many digits a position is beyond any file (2**63 has 19): compared as "huge", never parsed, so that
# a 4,300-digit number meets no int() limit.
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS


class RangeNotSatisfiable(MMSearchError):
    """No range of a Range header starts inside the file (HTTP 416)."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"the requested byte range is outside the file ({size} bytes)",
            hint=f"ask for bytes 0-{max(size - 1, 0)}, or send no Range header for the whole file",
        )
        self.size = size


def satisfiable_ranges(header: str | None, size: int) -> str | None:
    """The Range header to answer (only the satisfiable ranges of `header`), or None to send the whole file."""
    if header is None or size == 0:
        return None
    unit, equals, specs = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    kept: list[str] = []
    given = 0
    for raw in specs.split(","):
        spec = raw.strip()
        if not spec:
            continue  # empty list elements are allowed (RFC 9110 §5.6.1)
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None or not any(match.groups()):
            return None
        first, last = (_position(g) for g in match.groups())
        if first is not None and last is not None and last < first:
            return None
        given += 1
        if (first is not None and first < size) or (first is None and last):
            kept.append(_clamped(first, last, size))
    if not given:
        return None
    if not kept:
        raise RangeNotSatisfiable(size)
    return "bytes=" + ",".join(kept)


def _position(digits: str) -> int | None:
    """A byte position of a range spec; None when absent; _HUGE for anything longer than _MAX_DIGITS."""
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else _HUGE


def _clamped(first: int | None, last: int | None, size: int) -> str:
    """A satisfiable spec with its positions inside the file (`0-HUGE` -> `0-SIZE-1`, `-HUGE` -> `-SIZE`)."""
    if first is None:
        return f"-{min(last or 0, size)}"
    return f"{first}-{size - 1 if last is None else min(last, size - 1)}"


class MediaResponse(FileResponse):
    """The file, answering the request's Range header as decided above (If-Range first, RFC 9110 §13.1.5)."""

    def __init__(self, opened: Opened, request: Request, media_type: str) -> None:
        stat = opened.stat
        self.opened = opened
        super().__init__(
            opened.path_for_reopen, media_type=media_type, stat_result=stat, content_disposition_type="inline"
        )
        if_range = request.headers.get("if-range")
        if if_range is not None and if_range not in (self.headers["etag"], self.headers["last-modified"]):
            self.range_header = None  # the file changed since the client's copy: all of it, as Starlette does
        else:
            self.range_header = satisfiable_ranges(request.headers.get("range"), stat.st_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name != b"range"]
        if self.range_header is not None:
            headers.append((b"range", self.range_header.encode("latin-1")))
        try:
            await super().__call__({**scope, "headers": headers}, receive, send)
        finally:
            self.opened.close()
