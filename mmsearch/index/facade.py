"""`Index`: one index — catalog, manifest and vector store — opened for reading or for writing, from a directory
(`--index DIR`) or a shared PostgreSQL catalog (`--catalog URL`). Everything outside index/ uses it, not its parts.

Layout of a local DIR:
  catalog.sqlite          files, segments, manifest (which vector generation is live, which model built it)
  vectors-NNNNNNNN.faiss  vector generations of the FAISS store; the manifest names the live one, the one before
                          is kept for readers (other stores keep their vectors elsewhere: the manifest names where)
  write.lock              OS lock held by the one writer (lock.py: flock, or LockFileEx on Windows)

A writer's changes accumulate in one catalog transaction until `commit`, which makes the store durable first
(a new generation), then commits the catalog rows and the manifest that names it: a crash leaves the last commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from .. import __version__
from ..errors import REPAIR_HINT, CorruptIndex, DiskFull, MMSearchError, ModelMismatch, UsageError, is_disk_full
from ..paths import CATALOG_FILE, LOCK_FILE, display_path
from ..stores.protocol import Device, StoreBackend, StoreConfig, VectorStore
from ..stores.registry import backend_of, store_backend
from ..types import CLIP_KINDS, MediaFile, Segment, SegmentKind, SpaceVectors, spoken_language
from .catalog import Catalog, FileRecord, SegmentRecord
from .claims import LocalWork, SharedWork, WorkShare
from .location import IndexLocation
from .lock import WriteLock
from .manifest import Manifest, SpaceInfo, check_model, open_live, space_infos
from .people import PeopleCatalog

T = TypeVar("T")


@dataclass(frozen=True)
class FileContent:
    segments: list[Segment]
    vectors: np.ndarray
    shots: list[tuple[float, float]]
    asr: str | None
    spaces: dict[str, SpaceVectors] = field(default_factory=dict)
    faces: list[tuple[int, int, bytes | None]] = field(default_factory=list)  # (row, face width, crop): people.py


class Index:
    """Catalog + manifest + vector store of one index. Open it with `Index.read` or `Index.write`."""

    def __init__(self, location: IndexLocation, catalog: Catalog, *, device: Device = "cpu") -> None:
        self.location = location
        self.device = device
        self._catalog: Catalog | None = catalog
        self._store: VectorStore | None = None
        self._manifest: Manifest | None = None
        self._lock: WriteLock | None = None
        self._writing = False
        self.work: WorkShare = LocalWork()
        self.generation = 0
        self.model = ""
        self.untrained = False
        self.store_config = StoreConfig()
        self.extra_manifest: dict[str, str] = {}
        self._created_dir = False
        # What the last commit saw; commit() skips writing a generation when neither changed since.
        self._committed_changes = -1
        self._store_changed = False

    # -- opening ----------------------------------------------------------------------------------------

    @classmethod
    def read(cls, location: IndexLocation | Path, device: Device = "cpu") -> Index:
        """The last committed state: catalog (read-only) and the vector store its manifest names."""
        location = IndexLocation.of(location)
        catalog, manifest, store = open_live(location, device)
        index = cls(location, catalog, device=device)
        index._manifest, index._store, index.generation = manifest, store, manifest.generation
        return index

    @classmethod
    def write(
        cls,
        location: IndexLocation | Path,
        model: str,
        untrained: bool,
        device: Device = "auto",
        store: StoreConfig | None = None,
        claim_ttl: float | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> Index:
        """The one writer of a local index (its directory locked), or one of several on a shared catalog.

        Checks the model and backend asked for against an existing index before any model is loaded; `prepare`
        runs under the lock before the catalog is opened (repair salvages a damaged catalog there). An empty
        `model` opens the index as it is (repair, remove)."""
        location = IndexLocation.of(location)
        lock = None if location.shared else WriteLock(location.directory)
        created = not location.shared and not location.directory.exists()
        if lock is not None:
            _make_index_dir(location.directory)
            try:
                lock.acquire()
            except OSError as e:
                raise _unwritable(location.directory, e) from e
        try:
            if prepare is not None:
                prepare()
            catalog = location.open_catalog(readonly=False)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        index = cls(location, catalog, device=device)
        index._lock, index._created_dir, index.model, index.untrained = lock, created, model, untrained
        index._writing = True
        index.store_config = store or StoreConfig()
        if location.shared:
            index.work = SharedWork(location.catalog_url or "", **({"ttl": claim_ttl} if claim_ttl else {}))
        try:
            index._check_existing()
        except BaseException:
            # A refused open (newer schema, other model or backend) must not keep the lock for the rest of the process.
            index.close(commit=False)
            raise
        return index

    def _check_existing(self) -> None:
        raw = self._cat().manifest()
        if "model" in raw and self.model and not self._empty_for_another_model(raw):
            check_model(Manifest.from_catalog_values(raw, self.location.label_path), self.model, hint=INDEX_MODEL_HINT)
            have = raw.get("backend", store_backend(None).name)
            if self.store_config.backend is not None and self.store_config.backend != have:
                raise UsageError(
                    f"the index stores its vectors in {have}, not {self.store_config.backend}",
                    hint="build another index with --index DIR to use the other backend",
                )
            backend_of(raw).check_existing(raw, self.store_config)

    def open_vectors(self, dim: Callable[[], int]) -> VectorStore:
        """Load the live vectors for writing, or create the index; `dim` is asked only when creating."""
        catalog = self._cat()
        raw = catalog.manifest()
        if "model" in raw and self._empty_for_another_model(raw):
            # A first run that failed before storing a file (weights missing offline) pinned nothing: this run's
            # model takes the index over, in a new generation.
            self.generation = Manifest.from_catalog_values(raw, self.location.label_path).generation
            raw = {}
        if "model" in raw:
            manifest = Manifest.from_catalog_values(raw, self.location.label_path)
            self.generation = manifest.generation
            self._store = self._backend(raw).open(
                raw, self.location.directory, self.device, writer=True, index_type=self.store_config.index_type
            )
            if self._store.dim != manifest.dim:
                raise CorruptIndex(
                    f"the vectors of index {self.location.label} have dimension {self._store.dim}, "
                    f"its manifest says {manifest.dim}",
                    hint=REPAIR_HINT,
                )
            with self.work.syncing_vectors():
                self._store.sync(catalog.segment_ids())
            self._committed_changes = catalog.total_changes
        else:
            size = dim()
            backend = store_backend(self.store_config.backend)
            self._store = backend.create(self.store_config, self.location.directory, size, self.device)
            catalog.begin()
            catalog.set_manifest(self._manifest_values(size, backend.name))
            self._save_generation()
        self._backend().retire(self.location.directory, self.generation)
        catalog.begin()
        return self._store

    def _empty_for_another_model(self, raw: Mapping[str, str]) -> bool:
        """An index that holds no file and was made with another model than this run's."""
        return bool(self.model) and raw.get("model") != self.model and self._cat().file_count() == 0

    def adopt_vectors(self, store: VectorStore, generation: int) -> None:
        """Use `store` as the live vectors from here on, the next commit writing `generation + 1`
        (check --repair replaces a damaged generation)."""
        self.generation = generation
        self._store = store
        self._store_changed = True
        self._cat().begin()

    def _manifest_values(self, dim: int, backend: str) -> dict[str, str]:
        return {
            "model": self.model,
            "model_untrained": "1" if self.untrained else "0",
            "dim": str(dim),
            "backend": backend,
            "metric": "inner_product",
            "mmsearch_version": __version__,
            **self.extra_manifest,
        }

    def _cat(self) -> Catalog:
        if self._catalog is None:
            raise RuntimeError("the index is closed")
        return self._catalog

    def _backend(self, raw: dict[str, str] | None = None) -> StoreBackend:
        return backend_of(raw if raw is not None else self._cat().manifest())

    # -- reading ----------------------------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog, for readers that search it (keyword, segment table); writers use the methods below."""
        return self._cat()

    @property
    def store(self) -> VectorStore:
        if self._store is None:
            raise RuntimeError("Index.open_vectors() was not called")
        return self._store

    @property
    def manifest(self) -> Manifest:
        """The manifest of the state a reader opened."""
        if self._manifest is None:
            self._manifest = Manifest.from_catalog_values(self._cat().manifest(), self.location.label_path)
        return self._manifest

    def manifest_values(self) -> dict[str, str]:
        return self._cat().manifest()

    def spaces(self) -> dict[str, SpaceInfo]:
        return space_infos(self._cat().manifest())

    def files(self) -> list[FileRecord]:
        return self._cat().files()

    def file_by_key(self, key: bytes) -> FileRecord | None:
        return self._cat().file_by_key(key)

    def file_count(self) -> int:
        return self._cat().file_count()

    def segment_counts(self) -> dict[str, int]:
        return self._cat().counts()

    def space_counts(self, file_id: int | None = None) -> dict[str, int]:
        return self._cat().space_counts(file_id)

    def segments_of(self, file_id: int) -> list[SegmentRecord]:
        return self._cat().segments_of(file_id)

    def shots_of(self, file_id: int) -> list[tuple[float, float]]:
        return self._cat().shots_of([file_id]).get(file_id, [])

    def failures(self) -> dict[bytes, tuple[str, str, str]]:
        return self._cat().failures()

    def texts_without_space(self, space: str, kinds: Iterable[SegmentKind]) -> list[tuple[int, str]]:
        return self._cat().texts_without_space(space, kinds)

    def size_bytes(self) -> int | None:
        """Bytes of the index directory's files (None for a shared index, whose parts live on servers)."""
        return None if self.location.shared else index_size_bytes(self.location.directory)

    def index_type(self) -> str:
        return self._backend().index_type(self._cat().manifest())

    # -- writing ----------------------------------------------------------------------------------------

    def add_file(
        self,
        media: MediaFile,
        sha256: str,
        segments: list[Segment],
        vectors: np.ndarray,
        shots: Sequence[tuple[float, float]] = (),
        asr: str | None = None,
        spaces: Mapping[str, SpaceVectors] | None = None,
        faces: Sequence[tuple[int, int, bytes | None]] = (),
    ) -> int:
        """`vectors` are the CLIP vectors of the segments of CLIP kinds, in order; `spaces` those of other spaces."""
        catalog = self._cat()
        file_id = catalog.add_file(
            media.path,
            *(media.kind, media.size, media.mtime_ns, sha256, media.duration, media.has_audio, asr),
            language=spoken_language(segments),
        )
        ids = catalog.add_segments(file_id, segments)
        catalog.add_shots(file_id, shots)
        clip_ids = [i for i, seg in zip(ids, segments, strict=True) if seg.kind in CLIP_KINDS]
        self.store.add(np.asarray(clip_ids, np.int64), vectors)
        for name, space in (spaces or {}).items():
            catalog.add_space_vectors(name, [ids[row] for row in space.rows], space.vectors)
        # Face tracks: (row of the segment, face width, crop JPEG) -> the people tables (see people.py).
        catalog.add_face_tracks([(ids[row], size, crop) for row, size, crop in faces])
        self._store_changed = True
        return file_id

    def file_content(self, record: FileRecord) -> FileContent:
        """Segments, vectors and shots of an indexed file, to index a copy of it without embedding."""
        records = self._cat().segments_of(record.id)
        clip_ids = [r.id for r in records if r.kind in CLIP_KINDS]
        vectors = self.store.reconstruct(clip_ids) if clip_ids else np.zeros((0, self.store.dim))
        segments = [Segment(r.kind, r.start, r.end, r.text, r.channel, r.language) for r in records]
        position = {r.id: n for n, r in enumerate(records)}
        spaces = {
            name: SpaceVectors(tuple(position[i] for i in found), np.stack(list(found.values())))
            for name, found in self._cat().space_vectors_of(record.id).items()
        }
        rows = self._cat().face_rows_of(record.id)
        faces = [(position[i], size, crop) for i, (size, crop) in rows.items() if i in position]
        return FileContent(segments, vectors, self.shots_of(record.id), record.asr, spaces, faces)

    def edit_people(self, change: Callable[[PeopleCatalog], T]) -> T:
        """One change to the people tables (rename, merge, forget: see people.py), in this writer's transaction."""
        return change(self._cat())

    def assign_people(self) -> dict[int, int]:
        """Face tracks without a person join one (or become one): segment id -> person id of those placed."""
        catalog = self._cat()
        return catalog.assign_people() if catalog.unplaced_faces() else {}

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

    def record(self, values: dict[str, str]) -> None:
        """Manifest entries that describe the index (the device and runtime that embedded, a repaired dimension)."""
        self._cat().set_manifest(values)

    def record_failure(self, path: Path, sha256: str, reason: str) -> None:
        self._cat().record_failure(path, sha256, reason)

    def clear_failure(self, path: Path) -> None:
        self._cat().clear_failure(path)

    def touch_file(self, file_id: int, mtime_ns: int) -> None:
        self._cat().touch_file(file_id, mtime_ns)

    def move_file(self, file_id: int, new_path: Path, mtime_ns: int) -> None:
        self._cat().move_file(file_id, new_path, mtime_ns)

    def remove_file(self, record: FileRecord) -> int:
        ids = self._cat().remove_file(record.id)
        self.store.remove(ids)
        self._store_changed = True
        return len(ids)

    def commit(self) -> None:
        """Make everything since the last commit durable and visible: new generation, then manifest."""
        catalog = self._cat()
        if catalog.total_changes == self._committed_changes and not self._store_changed:
            return  # nothing new: an unchanged rerun must not rewrite the whole vector file
        if not catalog.in_transaction:
            catalog.begin()
        self._save_generation()
        self._backend().retire(self.location.directory, self.generation)
        catalog.begin()

    def _save_generation(self) -> None:
        catalog = self._cat()
        generation = self.generation + 1
        with self.work.writing_vectors():
            stored = self.store.persist(self.location.directory, generation)
            before = catalog.manifest()
            if "vectors_checksum" in before:
                # The previous generation stays on disk: its checksum lets repair recover from it if the live one is lost.
                stored["previous_vectors_generation"] = before.get("vectors_generation", "")
                stored["previous_vectors_checksum"] = before["vectors_checksum"]
            try:
                catalog.set_manifest({"vectors_generation": str(generation), **stored})
                catalog.commit()
            except MMSearchError:  # the catalog refused the commit (a full disk): what was persisted names nothing
                self._backend(before).retire(self.location.directory, self.generation)
                raise
        self.generation = generation
        self._committed_changes = catalog.total_changes
        self._store_changed = False
        self.store.after_commit()

    # -- closing ----------------------------------------------------------------------------------------

    def close(self, commit: bool = True) -> None:
        if not self._writing:
            self._close_reader()
            return
        if self._catalog is not None:
            if commit and self._store is not None and self._catalog.in_transaction:
                self.commit()
            self._catalog.rollback()
            raw = self._catalog.manifest()
            never_initialised = "model" not in raw
            if self._store is not None and not never_initialised:
                # The run is over (or failed, maybe for lack of space): retired generations go now; readers
                # that still wanted one re-read the manifest when its file is gone.
                self._backend(raw).retire(self.location.directory, self.generation, grace=False)
            self._catalog.close()
            self._catalog = None
            if never_initialised and not self.location.shared:
                self._remove_stillborn()
        if self._store is not None:
            self._store.close()
            self._store = None
        self.work.close()
        self.work = LocalWork()
        if self._lock is not None:
            self._lock.release()

    def _close_reader(self) -> None:
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def _remove_stillborn(self) -> None:
        """A first run that failed before the index existed (e.g. no weights) leaves nothing half-made behind."""
        directory = self.location.directory
        for name in (CATALOG_FILE, CATALOG_FILE + "-wal", CATALOG_FILE + "-shm", LOCK_FILE):
            # Windows refuses to delete the lock file while it is open (locked); then it and the folder stay.
            with contextlib.suppress(PermissionError):
                (directory / name).unlink(missing_ok=True)
        if self._created_dir and not any(directory.iterdir()):
            directory.rmdir()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, *rest: object) -> None:
        # The transaction only ever holds complete files, so Ctrl-C keeps what was finished.
        try:
            self.close(commit=exc_type is None or issubclass(exc_type, KeyboardInterrupt))
        except (OSError, RuntimeError, MMSearchError) as e:
            if exc is not None:
                return  # closing after a failure can fail the same way (a full disk): report the first error
            if is_disk_full(e) and not isinstance(e, MMSearchError):
                raise _disk_full(self.location) from e
            raise
        if exc is not None and not isinstance(exc, MMSearchError) and is_disk_full(exc):
            raise _disk_full(self.location) from exc

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One writer at a time among several on a shared catalog (planning, removal, repair); free when local."""
        with self.work.exclusive():
            yield


def _disk_full(location: IndexLocation) -> DiskFull:
    return DiskFull(f"the disk holding {location.label} is full; the index keeps its last commit")


def index_size_bytes(index_dir: Path) -> int:
    total = 0
    for path in index_dir.iterdir() if index_dir.is_dir() else ():
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:
            continue  # a generation a writer retired while we counted
    return total


INDEX_MODEL_HINT = (
    "run `mmsearch index` without --model to add files with the index's own model, or build another index with "
    "--index DIR"
)


def _make_index_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(directory, e) from e


def _unwritable(directory: Path, e: OSError) -> UsageError:
    """An index directory that cannot be created or written (under a file, a read-only mount, /proc)."""
    return UsageError(
        f"cannot create or write the index directory {display_path(directory)}: {e.strerror or e}",
        hint="choose a writable folder with --index DIR (or $MMSEARCH_INDEX)",
    )
