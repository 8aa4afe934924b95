"""`mmsearch query` through a running `mmsearch serve`: no model to load, the answer in milliseconds.

The server is `--server URL` / $MMSEARCH_SERVER, else the one named by the index's server file. Anything short
of a clean answer for the same index (no server, another index, an error status, a query this client cannot
send) returns None and the query runs in-process as before, so output and exit codes are those of the
library either way: an error is always reported by the in-process run, never by the server.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import mimetypes
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from ..paths import resolve_index_dir
from ..search.results import moment_from_json
from ..server.discovery import INDEX_HEADER, TOKEN_ENV, UNTRAINED_HEADER, index_identity, read_announcement
from ..types import Moment
from .ui import warn_untrained

if TYPE_CHECKING:
    from ..search.searcher import Query

log = logging.getLogger(__name__)

# A server on this machine answers a warm query in milliseconds; this only bounds a hung one.
TIMEOUT_S = 30.0
# The Query fields the HTTP API carries; a query using any other (a newer flag) runs in-process.
SENT_FIELDS = frozenset(
    {"text", "image", "modality", "top_k", "channels", "fusion", "weights", "kinds", "then", "within"}
)


def search_via_server(
    query: Query, index: Path | None, server: str | None, explain: bool, warn: bool
) -> list[Moment] | None:
    """The server's moments for `query` (warning about untrained weights as the CLI does when `warn`), or None
    when the query should run in-process."""
    if not _sendable(query):
        return None
    index_dir = resolve_index_dir(index)
    url = server
    if not url:
        found = read_announcement(index_dir)
        url = found.url if found is not None else None
    if not url:
        return None
    try:
        request = _request(url.rstrip("/"), query, explain)
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            served = response.headers.get(INDEX_HEADER)
            body = json.loads(response.read())
            untrained = response.headers.get(UNTRAINED_HEADER)
    except (OSError, ValueError) as e:  # refused, timed out, an error status (HTTPError is an OSError), bad JSON
        log.info("server %s did not answer (%s); searching in-process", url, e)
        return None
    # An explicit --server speaks for its own index unless --index names another; a server file is in the index.
    if index is not None and served is not None and not _same_dir(served, index_dir):
        log.info("server %s serves %s, not %s; searching in-process", url, served, index_dir)
        return None
    if untrained and warn:
        warn_untrained(untrained)
    return [moment_from_json(r) for r in body["results"]]


def _sendable(query: Query) -> bool:
    defaults = type(query)()
    return all(
        getattr(query, f.name) == getattr(defaults, f.name)
        for f in dataclasses.fields(query)
        if f.name not in SENT_FIELDS
    )


def _same_dir(served: str, index_dir: Path) -> bool:
    mine = index_identity(index_dir)
    return bool(mine) and served == mine


def _request(url: str, query: Query, explain: bool) -> urllib.request.Request:
    params: list[tuple[str, str]] = [("modality", query.modality), ("top_k", str(query.top_k))]
    params += [("fusion", query.fusion), ("explain", "true" if explain else "false")]
    params += [("channel", name) for name in query.channels]
    params += [("kind", name) for name in query.kinds] + [("then", text) for text in query.then]
    params += [("within", repr(query.within))]
    params += [("weight", f"{name}={w!r}") for name, w in query.weights]
    headers = {"Accept": "application/json"}
    token = os.environ.get(TOKEN_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if query.image is None:
        params.append(("q", query.text or ""))
        return urllib.request.Request(f"{url}/api/search?{urllib.parse.urlencode(params)}", headers=headers)
    body, content_type = _multipart(query.image)
    headers["Content-Type"] = content_type
    return urllib.request.Request(
        f"{url}/api/search?{urllib.parse.urlencode(params)}", data=body, headers=headers, method="POST"
    )


def _multipart(image: Path) -> tuple[bytes, str]:
    """One file field `image`; an unreadable path raises OSError, which sends the query in-process."""
    boundary = uuid.uuid4().hex
    kind = mimetypes.guess_type(os.fsdecode(image.name))[0] or "application/octet-stream"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="query"\r\n'
        f"Content-Type: {kind}\r\n\r\n"
    ).encode()
    return head + image.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
