"""The vector-store seam: what every store is (`VectorStore`), what every kind of store can do with its files or
server (`StoreBackend`), and the store-neutral types between them and the index.

`index/` talks only to these types; which store serves an index is recorded in its manifest (`backend`, plus
what the backend's `persist` recorded), so queries need no backend flags. The registry is `registry.STORES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

# Where vectors are searched: `auto` picks a GPU when the store's build has one; `gpu` and `cuda` insist on it.
Device = Literal["auto", "cpu", "gpu", "cuda"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "gpu", "cuda")


def vector_device(device: str) -> Device:
    """The store's device for a `--device` value (validated by the CLI): vector search has no Apple MPS build."""
    for known in DEVICES:
        if device == known:
            return known
    return "cpu"


@dataclass(frozen=True)
class SearchResult:
    """Per query row: scores (inner products, best first) and segment ids (-1 where a slot is empty)."""

    scores: np.ndarray
    ids: np.ndarray


def empty_result(n_queries: int) -> SearchResult:
    empty = np.zeros((n_queries, 0))
    return SearchResult(empty.astype(np.float32), empty.astype(np.int64))


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
    index_type: str | None = None  # validated by the backend's `check_options` (registry.check_store_options)


@dataclass(frozen=True)
class StoreFault:
    """Something `mmsearch check` found wrong with the vectors themselves (not with the catalog)."""

    code: str
    message: str
    fixable: bool = True
    fatal: bool = False


@dataclass(frozen=True)
class Recovered:
    """The vectors `check --repair` could vouch for, and what it had to fall back on (None: nothing)."""

    store: VectorStore
    note: str | None = None


class StoreBackend(Protocol):
    """One kind of vector store: one module in stores/ and one entry in `registry.STORES`.

    Everything that depends on where a kind keeps its vectors (files and their checksums, a server's
    collection) is here, so that index/ never names a backend.
    """

    name: str

    def check_options(self, config: StoreConfig) -> None:
        """UsageError for options this backend cannot take (before anything is created)."""
        ...

    def check_existing(self, raw: dict[str, str], config: StoreConfig) -> None:
        """UsageError when `config` asks an existing index of this backend for something else (another URI)."""
        ...

    def reachable_from_other_hosts(self, config: StoreConfig) -> bool:
        """True when vectors stored with `config` can be shared by workers and query hosts on other machines."""
        ...

    def create(self, config: StoreConfig, index_dir: Path, dim: int, device: Device) -> VectorStore: ...

    def open(
        self, raw: dict[str, str], index_dir: Path, device: Device, *, writer: bool, index_type: str | None = None
    ) -> VectorStore:
        """The live vectors the manifest `raw` names, verified as far as is cheap (CorruptIndex when damaged).
        Readers may memory-map; the writer loads what it will change."""
        ...

    def index_type(self, raw: dict[str, str]) -> str:
        """The kind of search index, for `info`."""
        ...

    def inspect(self, raw: dict[str, str], index_dir: Path) -> tuple[VectorStore | None, list[StoreFault]]:
        """For `check`: the live vectors read in full (every byte verified), or None and why not."""
        ...

    def strays(self, index_dir: Path, live: int) -> list[Path]:
        """Leftovers no reader needs (old generations, temporaries), for `check`."""
        ...

    def retire(self, index_dir: Path, live: int, *, grace: bool = True) -> None:
        """Delete what `live` made obsolete (the writer holds the lock); `grace` spares what readers may still open."""
        ...

    def recover(self, raw: dict[str, str], index_dir: Path) -> Recovered:
        """For `check --repair`: the best vectors that can be vouched for (never invented)."""
        ...

    def newest_generation(self, raw: dict[str, str], index_dir: Path) -> int:
        """The highest generation the manifest or the store names: a repaired one is written above it."""
        ...

    def keep_only(self, index_dir: Path, live: int) -> None:
        """After a repair: drop every generation but the live one."""
        ...

    def reset(self, index_dir: Path) -> None:
        """Drop every local vector file (a repair that could not vouch for the catalog)."""
        ...

    def holds_files(self, index_dir: Path) -> bool:
        """True when `index_dir` holds this backend's files (repair uses it when the manifest lost its backend)."""
        ...
