"""An index directory: catalog + vector generations + manifest, opened for writing (locked) or for reading.

Layout of DIR:
  catalog.sqlite          files, segments, manifest (which vector generation is live, which model built it)
  vectors-NNNNNNNN.faiss  vector generations; the manifest names the live one, the one before is kept for readers
                          (with `--backend milvus` the vectors live in a Milvus collection the manifest names)
  write.lock              OS lock held by the one writer (lock.py: flock, or LockFileEx on Windows)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import CorruptIndex, DiskFull, MMSearchError, ModelMismatch
from ..paths import CATALOG_FILE, LOCK_FILE, display_path
from ..stores.faiss_store import (
    REPAIR_HINT,
    Device,
    generation_file,
    is_disk_full,
    stale_generation_files,
    verify_checksum,
)
from ..stores.protocol import BACKEND_FAISS, StoreConfig, VectorStore, check_backend, create_store, open_store
from ..types import CLIP_KINDS, MediaFile, Segment, SpaceVectors
from .catalog import Catalog, FileRecord
from .claims import LocalWork, SharedWork, WorkShare
from .lock import WriteLock
from .manifest import Manifest, check_model, space_infos


@dataclass(frozen=True)
class FileContent:
    segments: list[Segment]
    vectors: np.ndarray
    shots: list[tuple[float, float]]
    asr: str | None
    spaces: dict[str, SpaceVectors] = field(default_factory=dict)


class IndexWriter:
    """The one writer of an index directory. Changes accumulate in one SQLite transaction until `commit`."""

    def __init__(
        self,
        index_dir: Path,
        model: str,
        untrained: bool,
        device: Device = "auto",
        store: StoreConfig | None = None,
        catalog_url: str | None = None,  # postgresql://: one of several workers on a shared catalog (no dir lock)
        claim_ttl: float | None = None,
    ) -> None:
        self.index_dir = index_dir
        self.model = model
        self.untrained = untrained
        self.device = device
        self.store_config = store or StoreConfig()
        self._lock = WriteLock(index_dir)
        self.catalog: Catalog | None = None
        self.store: VectorStore | None = None
        self.generation = 0
        self.extra_manifest: dict[str, str] = {}
        self._created_dir = False
        # What the last commit saw; commit() skips writing a generation when neither changed since.
        self._committed_changes = -1
        self._store_changed = False
        self.catalog_url = catalog_url
        self.claim_ttl = claim_ttl
        self.work: WorkShare = LocalWork()

    def open(self) -> None:
        """Lock the directory and check the model, before any model is loaded (those checks are cheap)."""
        if self.catalog_url:
            self._open_shared()
            return
        self.lock()
        self.open_catalog()

    def lock(self) -> None:
        """Take the write lock (IndexLocked if another writer holds it); the catalog is not opened yet."""
        self._created_dir = not self.index_dir.exists()
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()

    def open_catalog(self) -> None:
        """Open (create, migrate) the catalog under the lock and check the model and backend asked for."""
        try:
            self.catalog = Catalog.open(self.index_dir / CATALOG_FILE, create=True)
            self._check_existing()
        except BaseException:
            # A refused open (newer schema, other model or backend) must not keep the lock for the rest of the process.
            self.close(commit=False)
            raise

    def _check_existing(self) -> None:
        raw = self._cat().manifest()
        if "model" in raw and self.model:  # repair opens with no model: it reads the manifest as it is
            check_model(Manifest.from_catalog(self._cat(), self.index_dir), self.model)
            check_backend(raw, self.store_config)

    def _open_shared(self) -> None:
        """One of several workers on a PostgreSQL catalog: no directory lock; claims and advisory locks instead."""
        from .catalog_pg import PgCatalog

        self.catalog = PgCatalog.open_url(self.catalog_url or "")
        self.work = SharedWork(self.catalog_url or "", **({"ttl": self.claim_ttl} if self.claim_ttl else {}))
        try:
            self._check_existing()
        except BaseException:
            self.close(commit=False)
            raise

    def ensure_store(self, dim: Callable[[], int]) -> VectorStore:
        """Load the live vectors, or create the index; `dim` is asked only when creating."""
        catalog = self._cat()
        raw = catalog.manifest()
        if "model" in raw:
            manifest = Manifest.from_catalog(catalog, self.index_dir)
            self.generation = manifest.generation
            if manifest.backend == BACKEND_FAISS:
                # Carrying damaged vectors into the next generation would give them a valid checksum.
                verify_checksum(generation_file(self.index_dir, self.generation), manifest.checksum)
            self.store = open_store(
                raw, self.index_dir, self.generation, self.device, writer=True, index_type=self.store_config.index_type
            )
            if self.store.dim != manifest.dim:
                raise CorruptIndex(
                    f"the vectors of index {display_path(self.index_dir)} have dimension {self.store.dim}, "
                    f"its manifest says {manifest.dim}",
                    hint=REPAIR_HINT,
                )
            with self.work.syncing_vectors():
                self.store.sync(catalog.segment_ids())
            self._committed_changes = catalog.total_changes
        else:
            size = dim()
            self.store = create_store(self.store_config, self.index_dir, size, self.device)
            catalog.begin()
            catalog.set_manifest(self._manifest_values(size))
            self._save_generation()
        for stale in stale_generation_files(self.index_dir, self.generation):
            stale.unlink(missing_ok=True)
        self._cat().begin()
        return self.store

    def adopt_store(self, store: VectorStore, generation: int) -> None:
        """Use `store` as the live vectors from here on, the next commit writing `generation + 1`
        (check --repair replaces a damaged generation)."""
        self.generation = generation
        self.store = store
        self._store_changed = True
        self._cat().begin()

    def _manifest_values(self, dim: int) -> dict[str, str]:
        return {
            "model": self.model,
            "model_untrained": "1" if self.untrained else "0",
            "dim": str(dim),
            "backend": self.store_config.backend or BACKEND_FAISS,
            "metric": "inner_product",
            "mmsearch_version": __version__,
            **self.extra_manifest,
        }

    def _cat(self) -> Catalog:
        if self.catalog is None:
            raise RuntimeError("IndexWriter.open() was not called")
        return self.catalog

    def _st(self) -> VectorStore:
        if self.store is None:
            raise RuntimeError("IndexWriter.ensure_store() was not called")
        return self.store

    def add_file(
        self,
        media: MediaFile,
        sha256: str,
        segments: list[Segment],
        vectors: np.ndarray,
        shots: Sequence[tuple[float, float]] = (),
        asr: str | None = None,
        spaces: Mapping[str, SpaceVectors] | None = None,
    ) -> int:
        """`vectors` are the CLIP vectors of the segments of CLIP kinds, in order; `spaces` those of other spaces."""
        catalog = self._cat()
        file_id = catalog.add_file(
            media.path, media.kind, media.size, media.mtime_ns, sha256, media.duration, media.has_audio, asr
        )
        ids = catalog.add_segments(file_id, segments)
        catalog.add_shots(file_id, shots)
        clip_ids = [i for i, seg in zip(ids, segments, strict=True) if seg.kind in CLIP_KINDS]
        self._st().add(np.asarray(clip_ids, np.int64), vectors)
        for name, space in (spaces or {}).items():
            catalog.add_space_vectors(name, [ids[row] for row in space.rows], space.vectors)
        self._store_changed = True
        return file_id

    def file_content(self, record: FileRecord) -> FileContent:
        """Segments, vectors and shots of an indexed file, to index a copy of it without embedding."""
        records = self._cat().segments_of(record.id)
        clip_ids = [r.id for r in records if r.kind in CLIP_KINDS]
        vectors = self._st().reconstruct(clip_ids) if clip_ids else np.zeros((0, self._st().dim))
        segments = [Segment(r.kind, r.start, r.end, r.text) for r in records]
        position = {r.id: n for n, r in enumerate(records)}
        spaces = {
            name: SpaceVectors(tuple(position[i] for i in found), np.stack(list(found.values())))
            for name, found in self._cat().space_vectors_of(record.id).items()
        }
        shots = self._cat().shots_of([record.id]).get(record.id, [])
        return FileContent(segments, vectors, shots, record.asr, spaces)

    def add_space_vectors(self, space: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Vectors of an extra space for segments already in the index."""
        self._cat().add_space_vectors(space, ids, vectors)

    def use_space(self, name: str, model: str, dim: int) -> None:
        """Record which model fills space `name`; an index keeps one model per space."""
        known = space_infos(self._cat().manifest()).get(name)
        if known is not None and known.model != model:
            raise ModelMismatch(
                f"the index's {name} space was built with {known.model!r}, not {model!r}",
                hint="index with the same model, or build another index with --index DIR",
            )
        if known is None:
            self._cat().set_manifest({f"space.{name}.model": model, f"space.{name}.dim": str(dim)})

    def remove_file(self, record: FileRecord) -> int:
        ids = self._cat().remove_file(record.id)
        self._st().remove(ids)
        self._store_changed = True
        return len(ids)

    def commit(self) -> None:
        """Make everything since the last commit durable and visible: new generation file, then manifest."""
        catalog = self._cat()
        if catalog.total_changes == self._committed_changes and not self._store_changed:
            return  # nothing new: an unchanged rerun must not rewrite the whole vector file
        if not catalog.in_transaction:
            catalog.begin()
        self._save_generation()
        for stale in stale_generation_files(self.index_dir, self.generation):
            stale.unlink(missing_ok=True)
        catalog.begin()

    def _save_generation(self) -> None:
        catalog = self._cat()
        generation = self.generation + 1
        with self.work.writing_vectors():
            stored = self._st().persist(self.index_dir, generation)
            before = catalog.manifest()
            if "vectors_checksum" in before:
                # The previous generation stays on disk: its checksum lets repair recover from it if the live one is lost.
                stored["previous_vectors_generation"] = before.get("vectors_generation", "")
                stored["previous_vectors_checksum"] = before["vectors_checksum"]
            try:
                catalog.set_manifest({"vectors_generation": str(generation), **stored})
                catalog.commit()
            except MMSearchError:  # the catalog refused the commit (a full disk): the new file names nothing
                generation_file(self.index_dir, generation).unlink(missing_ok=True)
                raise
        self.generation = generation
        self._committed_changes = catalog.total_changes
        self._store_changed = False
        self._st().after_commit()

    def close(self, commit: bool = True) -> None:
        if self.catalog is not None:
            if commit and self.store is not None and self.catalog.in_transaction:
                self.commit()
            self.catalog.rollback()
            never_initialised = "model" not in self.catalog.manifest()
            if self.store is not None and not never_initialised:
                # The run is over (or failed, maybe for lack of space): retired generations go now; readers
                # that still wanted one re-read the manifest when its file is gone.
                for stale in stale_generation_files(self.index_dir, self.generation, grace=0):
                    stale.unlink(missing_ok=True)
            self.catalog.close()
            self.catalog = None
            if never_initialised and not self.catalog_url:
                self._remove_stillborn()
        if self.store is not None:
            self.store.close()
            self.store = None
        self.work.close()
        self.work = LocalWork()
        self._lock.release()

    def _remove_stillborn(self) -> None:
        """A first run that failed before the index existed (e.g. no weights) leaves nothing half-made behind."""
        for name in (CATALOG_FILE, CATALOG_FILE + "-wal", CATALOG_FILE + "-shm", LOCK_FILE):
            # Windows refuses to delete the lock file while it is open (locked); then it and the folder stay.
            with contextlib.suppress(PermissionError):
                (self.index_dir / name).unlink(missing_ok=True)
        if self._created_dir and not any(self.index_dir.iterdir()):
            self.index_dir.rmdir()

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, *rest: object) -> None:
        # The transaction only ever holds complete files, so Ctrl-C keeps what was finished.
        try:
            self.close(commit=exc_type is None or issubclass(exc_type, KeyboardInterrupt))
        except (OSError, RuntimeError, MMSearchError) as e:
            if exc is not None:
                return  # closing after a failure can fail the same way (a full disk): report the first error
            if is_disk_full(e) and not isinstance(e, MMSearchError):
                raise _disk_full(self.index_dir) from e
            raise
        if exc is not None and not isinstance(exc, MMSearchError) and is_disk_full(exc):
            raise _disk_full(self.index_dir) from exc


def _disk_full(index_dir: Path) -> DiskFull:
    return DiskFull(f"the disk holding {display_path(index_dir)} is full; the index keeps its last commit")
