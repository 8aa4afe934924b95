"""The server file: `server.json` in the index directory says a server is answering for this index, and where.

`mmsearch serve` writes it when it starts and removes it when it stops; `mmsearch query` reads it to send its
query there instead of loading the model. A file left behind by a killed server names a dead process and is
ignored (and the query falls back to loading the index itself when the URL does not answer anyway).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SERVER_FILE = "server.json"
SERVER_ENV = "MMSEARCH_SERVER"
TOKEN_ENV = "MMSEARCH_TOKEN"
# The response header identifying the index a server answers for, so a client can tell it is the index it meant:
# index_identity(), a digest of the directory's device and inode (what os.path.samefile compares), not its path.
INDEX_HEADER = "X-MMSearch-Index"
UNTRAINED_HEADER = "X-MMSearch-Untrained-Model"


@dataclass(frozen=True)
class Announcement:
    path: Path
    url: str
    pid: int


def announce(index_dir: Path, url: str) -> Announcement | None:
    """Write the server file (atomically); None when the index directory is missing or read-only."""
    target = index_dir / SERVER_FILE
    data = {"url": url, "pid": os.getpid(), "index": os.fsdecode(index_dir.resolve())}
    tmp = index_dir / f".{SERVER_FILE}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps(data))
        tmp.replace(target)
    except OSError as e:
        log.info("server file not written in %s (%s); `mmsearch query` will need --server", index_dir, e)
        return None
    return Announcement(target, url, os.getpid())


def index_identity(index_dir: Path) -> str:
    """Equal for two paths of the same directory (as `os.path.samefile`), and revealing no path; "" if missing."""
    try:
        st = os.stat(index_dir)
    except OSError:
        return ""
    return hashlib.sha256(f"mmsearch-index:{st.st_dev}:{st.st_ino}".encode()).hexdigest()[:32]


def withdraw(announcement: Announcement) -> None:
    """Remove the server file, unless another server has announced itself there since."""
    found = read_announcement(announcement.path.parent)
    if found is not None and found.pid == announcement.pid:
        announcement.path.unlink(missing_ok=True)


def read_announcement(index_dir: Path) -> Announcement | None:
    """The live server of an index, if its file names a process that still runs."""
    path = index_dir / SERVER_FILE
    try:
        data = json.loads(path.read_text())
        found = Announcement(path, str(data["url"]), int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return found if _alive(found.pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
