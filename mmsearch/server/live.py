"""The server's view of one index: a Searcher on the last committed generation, swapped when a newer one commits.

Every request runs inside a catalog read transaction (`Catalog.snapshot`) whose first read is the live
generation: if it is the one the searcher's vectors were loaded from, catalog rows and vectors agree for the
whole request; if a commit has landed since, a new searcher is opened beside the old one, swapped in, and the
request retried on it. A writer never makes a half-written state visible (catalog rows and the manifest's
generation commit in one SQLite transaction, after the generation's vector file is written), so a request sees
one committed state or the next, never a mix. Requests are serialised on one lock: a Searcher (one SQLite
connection, lazily built keyword index) is not meant for concurrent use, and a search takes milliseconds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from ..errors import CorruptIndex, IndexNotFound, MMSearchError
from ..index.catalog import Catalog, FileRecord, SegmentRecord
from ..index.info import describe_index
from ..index.location import IndexLocation, require_index
from ..models.clip import Embedder
from ..paths import CATALOG_FILE
from ..search.searcher import Query, Searcher
from ..types import Moment, SegmentKind

log = logging.getLogger(__name__)

T = TypeVar("T")
WARM_UP_TEXT = "a person walking"
WARM_UP_BACKGROUNDS = ("image", "like")
# A request that keeps meeting a newer generation (an index run committing every few ms) is served on the
# newest searcher it managed to open rather than retried forever.
MAX_REOPENS = 3


class IndexGone(IndexNotFound):
    """The catalog being served was deleted and no new one exists yet (HTTP 503)."""


def catalog_identity(index_dir: Path) -> tuple[int, int] | None:
    """(device, inode) of the index's catalog file: a new one after `rm -rf DIR` and a rebuild; None if none."""
    try:
        st = os.stat(index_dir / CATALOG_FILE)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class LiveIndex:
    """One index directory, opened once (model included) and followed as it changes."""

    def __init__(self, index_dir: Path, device: str = "auto") -> None:
        self.index_dir = index_dir
        self.device = device
        self._searcher: Searcher | None = None
        self._files: dict[int, FileRecord] = {}
        self._lock = threading.Lock()  # held while a searcher is used, swapped or closed
        self._opening = threading.Lock()  # one reopen at a time; requests keep using the old searcher meanwhile
        self._identity: tuple[int, int] | None = None  # catalog_identity() of what the searcher was opened from
        self._deleted = False  # the index served was deleted: 503 (not 404) until it is rebuilt

    def open(self) -> None:
        """Load the index now if there is one; a server may start before the first `mmsearch index`."""
        try:
            self._reopen(None)
        except IndexNotFound:
            log.warning("no index at %s yet; serving it once `mmsearch index` creates it", self.index_dir)

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
                self._searcher = None

    def warm_up(self) -> None:
        """Load everything a query needs (text towers, calibration backgrounds, keyword index) by running one,
        so that the first query a person sends is as fast as the next."""
        if self._searcher is None:
            return
        try:
            self.search(Query(text=WARM_UP_TEXT))  # text towers of every space, the keyword index, "text" background
            for kind in WARM_UP_BACKGROUNDS:  # image queries' backgrounds embed images: the image tower too
                self.run(partial(_backgrounds, kind=kind))
        except MMSearchError as e:  # e.g. weights of an extra space missing: that query will say so itself
            log.warning("warm-up query failed: %s", e.message)

    def run(self, work: Callable[[Searcher], T]) -> T:
        """`work(searcher)` on one committed state of the index, the newest one at the time of the call."""
        self._follow_replacement()
        for attempt in range(MAX_REOPENS + 1):
            last = attempt == MAX_REOPENS
            seen = self._searcher or self._reopen(None)
            with self._lock:
                current = self._searcher
                if current is not None and (current is seen or last):
                    with current.catalog.snapshot():
                        if last or _generation(current.catalog) == current.manifest.generation:
                            return work(current)
            self._reopen(seen)
        raise IndexGone("no index at the moment: it was closed while it was being read")

    def _follow_replacement(self) -> None:
        """A catalog replaced since it was opened (`rm -rf DIR`, a rebuild) is reopened; a deleted one is dropped."""
        current = self._searcher
        now = catalog_identity(self.index_dir)
        if now is None and (current is not None or self._deleted):
            if current is not None:
                with self._lock:
                    if self._searcher is current:
                        self._searcher, self._files, self._identity = None, {}, None
                        current.close()
                log.warning("the index at %s was deleted; serving it again once it is rebuilt", self.index_dir)
            self._deleted = True
            raise IndexGone("no index at the moment: it was deleted", hint="it is served again once rebuilt")
        if current is not None and now != self._identity:
            self._reopen(current, replaced=True)

    @property
    def untrained_model(self) -> str | None:
        """The model's name when its weights are untrained (clients warn about it, as the CLI does)."""
        searcher = self._searcher
        return searcher.manifest.model if searcher is not None and searcher.manifest.untrained else None

    def search(self, query: Query) -> list[tuple[Moment, FileRecord]]:
        """The query's moments, each with the catalog record of its file (for media and thumbnail URLs)."""

        def work(searcher: Searcher) -> list[tuple[Moment, FileRecord]]:
            found = []
            for moment in searcher.search(query):
                record = self._files.get(moment.file_id) if moment.file_id is not None else None
                if record is not None:
                    found.append((moment, record))
            return found

        return self.run(work)

    def file(self, file_id: int) -> FileRecord | None:
        """The catalog's record of a file in the live generation (what media and thumbnails are served from)."""
        return self.run(lambda _: self._files.get(file_id))

    def segments(self, file_id: int, kinds: tuple[SegmentKind, ...]) -> list[SegmentRecord]:
        """The file's segments of these kinds in the live generation, in time order."""
        found = self.run(lambda s: [r for r in s.index.segments_of(file_id) if r.kind in kinds])
        return sorted(found, key=lambda r: (r.start if r.start is not None else 0.0, r.kind.value))

    def info(self) -> dict[str, object]:
        """`mmsearch info --json` of the live generation."""
        return self.run(lambda s: describe_index(s.index))

    def _reopen(self, stale: Searcher | None, replaced: bool = False) -> Searcher:
        """Open the newest generation and make it live, unless another request already did."""
        with self._opening:
            current = self._searcher
            if current is not None and current is not stale:
                return current
            require_index(self.index_dir)
            identity = catalog_identity(self.index_dir)
            try:
                fresh = Searcher.open(self.index_dir, embedder=self._reusable_embedder(), device=self.device)
            except CorruptIndex as e:
                if current is None or replaced:  # never answer from a catalog that was replaced
                    raise
                # E.g. the generation just named was already superseded and deleted by a fast writer: keep
                # serving the last state that opened; the next request tries the newest one again.
                log.warning("keeping generation %d: %s", current.manifest.generation, e.message)
                return current
            try:
                fresh.keyword_index()  # built (or loaded) here, not inside the first keyword query's lock
                with fresh.catalog.snapshot():
                    fresh.context.segments()  # likewise the segment table (~0.2 s per 100k segments)
                files = {record.id: record for record in fresh.catalog.files()}
            except BaseException:
                fresh.close()
                raise
            with self._lock:
                old, self._searcher, self._files, self._identity = self._searcher, fresh, files, identity
                self._deleted = False
                if old is not None:
                    old.close()
            log.info("serving generation %d of %s", fresh.manifest.generation, self.index_dir)
            return fresh

    def _reusable_embedder(self) -> Embedder | None:
        """The loaded model, unless the index was rebuilt with another one."""
        current = self._searcher
        if current is None:
            return None
        model = IndexLocation(self.index_dir).saved_manifest().get("model")
        return current.embedder if model == current.embedder.spec.raw else None


def limit_threads(threads: int) -> None:
    """Threads per query for the model (torch) and the vector search (FAISS's OpenMP).

    A server answers one small query at a time: intra-op parallelism buys little there, and on a shared or
    busy machine spinning OpenMP/torch workers make a query 10-40x slower (measured in benchmarks/README.md).
    """
    import faiss
    import torch

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)


def _backgrounds(searcher: Searcher, kind: str) -> object:
    return searcher.calibration.backgrounds(kind)


def _generation(catalog: Catalog) -> int:
    return int(catalog.manifest().get("vectors_generation", "-1"))
