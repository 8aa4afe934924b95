"""Work sharing between ingest workers: who plans, who indexes which file, and when vectors may be synced.

`LocalWork` is the embedded case: one writer holds the directory lock, so every step is free. `SharedWork`
coordinates N workers through the PostgreSQL catalog, on a connection of its own (autocommit):

* planning (creating the index, applying moves / removals / copies, queueing new files) runs under an
  exclusive advisory lock, one worker at a time, so the cheap changes are applied once;
* each new file is claimed with `UPDATE … WHERE raw_path = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`: a row
  nobody holds or whose claim is stale (no heartbeat for `ttl` seconds, as judged by the claiming worker's own
  `--claim-ttl`). A heartbeat thread renews this worker's claims every `ttl / 4` seconds; the commit that adds
  the file deletes its claim. A worker that dies stops renewing, and its files are free again `ttl` seconds
  later (a rerun with a short `--claim-ttl` takes them at once: give it only when the owner is known dead);
* Milvus writes are not in the catalog's transaction, so "vectors whose ids the catalog lacks" are orphans only
  when no worker is between its upsert and its commit: writers hold a shared advisory lock across that window,
  and orphan cleaning (`sync`) takes it exclusively. PostgreSQL drops a dead worker's locks with its session.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

from ..paths import path_key
from ..types import MediaFile

# Advisory-lock keys (64-bit integers of our choosing; "mm" + a number).
PLAN_LOCK = 0x6D6D_0002
VECTOR_LOCK = 0x6D6D_0003
# A claim nobody renews is free after this long. Long enough that a loaded machine's pauses do not lose a
# claim (the heartbeat renews every TTL / 4), short enough that a dead worker's files wait minutes, not hours.
DEFAULT_CLAIM_TTL = 300.0


class WorkShare(Protocol):
    waited: float  # seconds spent waiting for other workers (locks, claims)

    def exclusive(self) -> contextlib.AbstractContextManager[None]: ...
    def writing_vectors(self) -> contextlib.AbstractContextManager[None]: ...
    def syncing_vectors(self) -> contextlib.AbstractContextManager[None]: ...
    def enqueue(self, work: list[tuple[MediaFile, str]]) -> None: ...
    def claimed(self, files: list[MediaFile]) -> Iterator[MediaFile]: ...
    def close(self) -> None: ...


class LocalWork:
    """One writer (the directory lock is held): nothing to coordinate."""

    waited = 0.0

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def writing_vectors(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def syncing_vectors(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def enqueue(self, work: list[tuple[MediaFile, str]]) -> None:
        return None

    def claimed(self, files: list[MediaFile]) -> Iterator[MediaFile]:
        yield from files

    def close(self) -> None:
        return None


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SharedWork:
    """N workers on one PostgreSQL catalog; see the module docstring for the protocol."""

    def __init__(self, url: str, ttl: float = DEFAULT_CLAIM_TTL) -> None:
        from .catalog_pg import connect

        self.worker = worker_name()
        self.ttl = ttl
        self.waited = 0.0
        self._conn: Any = connect(url)
        self._lock = threading.Lock()  # the heartbeat thread shares the connection
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._renew_loop, name="mmsearch-claims", daemon=True)
        self._heartbeat.start()

    def _sql(self, sql: str, params: tuple[object, ...] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, params or None)

    @contextlib.contextmanager
    def _advisory(self, key: int, shared: bool) -> Iterator[None]:
        kind = "_shared" if shared else ""
        t0 = time.perf_counter()
        self._sql(f"SELECT pg_advisory_lock{kind}(%s)", (key,))
        self.waited += time.perf_counter() - t0
        try:
            yield
        finally:
            self._sql(f"SELECT pg_advisory_unlock{kind}(%s)", (key,))

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        return self._advisory(PLAN_LOCK, shared=False)

    def writing_vectors(self) -> contextlib.AbstractContextManager[None]:
        return self._advisory(VECTOR_LOCK, shared=True)

    def syncing_vectors(self) -> contextlib.AbstractContextManager[None]:
        return self._advisory(VECTOR_LOCK, shared=False)

    def enqueue(self, work: list[tuple[MediaFile, str]]) -> None:
        """Queue new files; a row already there (queued or claimed by another worker) is left as it is."""
        # NOT EXISTS reads the committed row without waiting for a worker whose open transaction deletes it.
        sql = (
            "INSERT INTO claims (raw_path, sha256) SELECT %s, %s "
            "WHERE NOT EXISTS (SELECT 1 FROM claims WHERE raw_path = %s) ON CONFLICT (raw_path) DO NOTHING"
        )
        with self._lock, self._conn.cursor() as cursor:
            cursor.executemany(sql, [(path_key(m.path), sha, path_key(m.path)) for m, sha in work])

    def claim_next(self, keys: list[bytes]) -> bytes | None:
        """Claim one of `keys` that nobody holds (or whose claim is stale); None when none is left."""
        t0 = time.perf_counter()
        row = self._sql(
            "UPDATE claims SET worker = %s, heartbeat_at = now() "
            "WHERE raw_path = (SELECT raw_path FROM claims WHERE raw_path = ANY(%s) "
            "AND (worker IS NULL OR heartbeat_at < now() - make_interval(secs => %s)) "
            "ORDER BY raw_path LIMIT 1 FOR UPDATE SKIP LOCKED) "
            "RETURNING raw_path",
            (self.worker, keys, self.ttl),
        ).fetchone()
        self.waited += time.perf_counter() - t0
        return None if row is None else bytes(row[0])

    def _already_indexed(self, key: bytes) -> bool:
        """A file another worker committed after this worker planned: drop the stale queue row instead."""
        row = self._sql(
            "SELECT 1 FROM files f JOIN claims c ON c.raw_path = f.raw_path AND c.sha256 = f.sha256 "
            "WHERE f.raw_path = %s",
            (key,),
        ).fetchone()
        if row is not None:
            self._sql("DELETE FROM claims WHERE raw_path = %s AND worker = %s", (key, self.worker))
        return row is not None

    def claimed(self, files: list[MediaFile]) -> Iterator[MediaFile]:
        """The files of `files` this worker wins, one at a time (claimed lazily, as the decoder gets to them)."""
        by_key = {path_key(m.path): m for m in files}
        keys = sorted(by_key)
        while (key := self.claim_next(keys)) is not None:
            if not self._already_indexed(key):
                yield by_key[key]

    def renew(self) -> int:
        """Extend this worker's claims; rows another transaction holds (being committed) are skipped, not awaited."""
        return int(
            self._sql(
                "UPDATE claims SET heartbeat_at = now() WHERE raw_path IN "
                "(SELECT raw_path FROM claims WHERE worker = %s FOR UPDATE SKIP LOCKED)",
                (self.worker,),
            ).rowcount
        )

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            with contextlib.suppress(Exception):  # a missed renewal only shortens the claim; the next one retries
                self.renew()

    def release_all(self) -> None:
        """Give back claims this worker did not finish (failed files, an interrupted run) to other workers."""
        self._sql("UPDATE claims SET worker = NULL, heartbeat_at = NULL WHERE worker = %s", (self.worker,))

    def close(self) -> None:
        self._stop.set()
        self._heartbeat.join()
        with contextlib.suppress(Exception):
            self.release_all()
        self._conn.close()
