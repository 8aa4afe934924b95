"""The vector-store seam: one protocol that FAISS and Milvus stores satisfy, and a factory keyed by backend.

index.py and search.py talk only to `VectorStore`; which store serves an index is recorded in its manifest
(`backend`, plus `milvus_uri` / `milvus_collection` or `index_type`), so queries need no backend flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import CorruptIndex, UsageError
from ..paths import display_path
from .faiss_index import check_index_type, plan_from_manifest
from .faiss_store import REPAIR_HINT, Device, FaissStore, SearchResult, generation_file

BACKEND_FAISS = "faiss"
BACKEND_MILVUS = "milvus"
BACKENDS = (BACKEND_FAISS, BACKEND_MILVUS)


class VectorStore(Protocol):
    """Vectors keyed by catalog segment id; inner-product search over L2-normalised vectors."""

    dim: int

    @property
    def ntotal(self) -> int: ...
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...
    def remove(self, ids: np.ndarray | list[int]) -> int: ...
    def search(self, queries: np.ndarray, k: int) -> SearchResult: ...
    def reconstruct(self, ids: list[int]) -> np.ndarray: ...
    def ids(self) -> np.ndarray: ...
    def persist(self, index_dir: Path, generation: int) -> dict[str, str]:
        """Make changes durable before the catalog commits; returns manifest entries to record with it."""
        ...

    def after_commit(self) -> None:
        """Work that must follow the catalog commit (Milvus deletes)."""
        ...

    def sync(self, catalog_ids: list[int]) -> int:
        """Drop vectors the catalog does not hold (a writer opening the index); returns how many."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class StoreConfig:
    """How `mmsearch index` wants vectors stored. None: keep what the index already has (or the default)."""

    backend: str | None = None
    uri: str | None = None
    collection: str | None = None
    index_type: str | None = None

    def validate(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == BACKEND_MILVUS and not self.uri:
            raise UsageError("--backend milvus needs --uri (a milvus-lite file path.db or http://host:19530)")
        if self.backend != BACKEND_MILVUS and (self.uri or self.collection):
            raise UsageError("--uri and --collection go with --backend milvus")
        if self.index_type is not None:
            check_index_type(self.index_type)
            if self.backend == BACKEND_MILVUS:
                raise UsageError("--index-type applies to the faiss backend (Milvus chooses its own index)")


def create_store(config: StoreConfig, index_dir: Path, dim: int, device: Device = "auto") -> VectorStore:
    if config.backend == BACKEND_MILVUS:
        from .milvus_store import MilvusStore, default_collection, normalize_uri

        assert config.uri is not None  # validate() guarantees it
        collection = config.collection or default_collection(index_dir)
        return MilvusStore.create(normalize_uri(config.uri), collection, dim)
    return FaissStore.create(dim, device, config.index_type or "auto")


def open_store(
    raw: dict[str, str], index_dir: Path, generation: int, device: Device, *, writer: bool, index_type: str | None
) -> VectorStore:
    """The store a manifest names. Readers memory-map FAISS files; the writer reads them (it changes them)."""
    backend = raw.get("backend", BACKEND_FAISS)
    dim = int(raw["dim"])
    if backend == BACKEND_MILVUS:
        from .milvus_store import MilvusStore

        return MilvusStore.open(raw["milvus_uri"], raw["milvus_collection"], dim)
    path = generation_file(index_dir, generation)
    try:
        plan = plan_from_manifest(raw["index_type"], raw.get("index_params", "")) if "index_type" in raw else None
    except ValueError as e:
        raise CorruptIndex(
            f"the manifest's index type of {display_path(index_dir)} is damaged ({e})", hint=REPAIR_HINT
        ) from e
    store = FaissStore.load(path, device, plan, mmap=not writer)
    store.requested = index_type or raw.get("index_type_requested", "auto")
    return store


def check_backend(raw: dict[str, str], config: StoreConfig) -> None:
    """An existing index keeps its backend: asking for another is an error, not a silent switch."""
    have = raw.get("backend", BACKEND_FAISS)
    if config.backend is not None and config.backend != have:
        raise UsageError(
            f"the index stores its vectors in {have}, not {config.backend}",
            hint="build another index with --index DIR to use the other backend",
        )
    if config.uri is not None and have == BACKEND_MILVUS:
        from .milvus_store import normalize_uri

        if normalize_uri(config.uri) != raw.get("milvus_uri"):
            raise UsageError(f"the index's vectors live at {raw.get('milvus_uri')}, not {config.uri}")
