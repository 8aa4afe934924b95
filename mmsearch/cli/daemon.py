"""The background server of `mmsearch query`: after a query answered in-process, start `mmsearch serve` for the
index (when none runs), so that the next query is answered by it in milliseconds instead of loading the model and
opening the index again (seconds at millions of segments; benchmarks/README.md, issue 27).

Why by default: a new process pays for the model and the index on every query, a server pays once. Why after the
answer, not before: on a small machine the server's start-up would compete with this query for the same cores,
and this query needs nothing from it. It stops by itself after DAEMON_IDLE_S without a request (`serve
--idle-exit`), so it never holds memory long after its use; it logs to `serve.log` in the index directory.
Off with `--no-daemon` or MMSEARCH_NO_DAEMON=1, and never started for a query given `--server` (the user named the
server to use), `--catalog` (a shared index), or an index directory that is missing or read-only.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from ..paths import CATALOG_FILE
from ..server.discovery import read_announcement

log = logging.getLogger(__name__)

NO_DAEMON_ENV = "MMSEARCH_NO_DAEMON"
# A background server with no request for this long stops: long enough to serve a session of queries.
DAEMON_IDLE_S = 600
DAEMON_LOG = "serve.log"
# A start marker younger than this means another query is starting the server now: do not start a second one.
STARTING_FILE = ".serve-starting"
STARTING_GRACE_S = 120.0


def daemon_wanted(no_daemon: bool) -> bool:
    return not no_daemon and os.environ.get(NO_DAEMON_ENV, "").strip().lower() not in ("1", "true", "yes")


def start_daemon(index_dir: Path) -> int | None:
    """Start `mmsearch serve --idle-exit` for `index_dir` in the background; its pid, or None when one already runs
    (or is starting) or the index cannot host one."""
    if not (index_dir / CATALOG_FILE).is_file() or not os.access(index_dir, os.W_OK):
        return None
    if read_announcement(index_dir) is not None:
        (index_dir / STARTING_FILE).unlink(missing_ok=True)  # that start is over
        return None
    if not _claim_start(index_dir / STARTING_FILE):
        return None
    command = [
        sys.executable, "-m", "mmsearch", "serve", "--index", str(index_dir), "--port", "0",
        "--idle-exit", str(DAEMON_IDLE_S),
    ]  # fmt: skip
    with open(index_dir / DAEMON_LOG, "ab") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, close_fds=True
        )
    log.info("started a background server for %s (pid %d)", index_dir, process.pid)
    return process.pid


def _claim_start(marker: Path) -> bool:
    """Create the start marker (atomically); a stale one (a start that died) is replaced."""
    try:
        if time.time() - marker.stat().st_mtime < STARTING_GRACE_S:
            return False
        marker.unlink(missing_ok=True)
    except FileNotFoundError:
        pass
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except OSError:
        return False
    return True
