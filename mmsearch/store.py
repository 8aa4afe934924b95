"""Vector store: a FAISS index whose ids are the catalog's segment ids.

Writes are atomic: each commit saves a new generation file beside the old one (write, fsync, rename) and the
catalog's manifest names the live generation inside the same SQLite transaction that adds the segments.
A crash at any instant therefore leaves a manifest pointing to a complete file that matches the catalog.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import CorruptIndex, UsageError
from .paths import VECTORS_PREFIX, VECTORS_SUFFIX, display_path

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "gpu"]

REPAIR_HINT = "`mmsearch check --repair` drops what cannot be read; the next `mmsearch index` re-embeds it"


def _faiss() -> Any:
    import faiss  # deferred: importing faiss costs time and is not needed for `--help`

    return faiss


def gpu_count() -> int:
    faiss = _faiss()
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get else 0


def use_gpu(device: Device) -> bool:
    """`auto` picks the GPU when this faiss build reports one; `gpu` insists on it."""
    n = gpu_count()
    if device == "gpu" and n == 0:
        raise UsageError("--device gpu: this faiss build sees no GPU", hint="install faiss-gpu on a CUDA machine")
    return device != "cpu" and n > 0


@dataclass(frozen=True)
class SearchResult:
    scores: np.ndarray
    ids: np.ndarray


class FaissStore:
    """Exact inner-product search over L2-normalised vectors (cosine similarity)."""

    def __init__(self, index: Any, dim: int, device: Device = "auto") -> None:
        self.index = index
        self.dim = dim
        self.device = device
        self._gpu_index: Any = None

    @classmethod
    def create(cls, dim: int, device: Device = "auto") -> FaissStore:
        faiss = _faiss()
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), dim, device)

    @classmethod
    def load(cls, path: Path, device: Device = "auto") -> FaissStore:
        faiss = _faiss()
        if not path.is_file():
            raise CorruptIndex(f"vector file {display_path(path)} named by the manifest is missing", hint=REPAIR_HINT)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise CorruptIndex(
                f"vector file {display_path(path)} is unreadable: {_faiss_reason(e)}", hint=REPAIR_HINT
            ) from e
        return cls(index, int(index.d), device)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise CorruptIndex(f"vector dimension {vectors.shape[1]} does not match the index ({self.dim})")
        self.index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
        self._gpu_index = None

    def remove(self, ids: np.ndarray | list[int]) -> int:
        if len(ids) == 0:
            return 0
        removed = int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))
        self._gpu_index = None
        return removed

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        return np.stack([self.index.reconstruct(int(i)) for i in ids]).astype(np.float32)

    def ids(self) -> np.ndarray:
        faiss = _faiss()
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, self.ntotal)
        if k <= 0:
            empty = np.zeros((len(queries), 0))
            return SearchResult(empty.astype(np.float32), empty.astype(np.int64))
        scores, ids = self._search_index().search(queries, k)
        return SearchResult(scores, ids)

    def _search_index(self) -> Any:
        # The CPU index stays the master copy for add/remove/save; a GPU clone serves searches.
        if not use_gpu(self.device):
            return self.index
        if self._gpu_index is None:
            faiss = _faiss()
            log.info("cloning the index to %d GPU(s)", gpu_count())
            self._gpu_index = faiss.index_cpu_to_all_gpus(self.index)
        return self._gpu_index

    def save(self, path: Path) -> None:
        """Write to a temporary name, fsync, then rename, so a reader never sees a half-written file."""
        faiss = _faiss()
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)


def _faiss_reason(e: BaseException) -> str:
    """faiss messages start with the C++ function and source line; keep what went wrong."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    text = re.sub(r"^Error in .*? at \S+:\d+: ", "", text)
    return text.removeprefix("Error: ")[:200]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def generation_file(index_dir: Path, generation: int) -> Path:
    return index_dir / f"{VECTORS_PREFIX}{generation:08d}{VECTORS_SUFFIX}"


def stale_generation_files(index_dir: Path, live: int) -> list[Path]:
    """Vector files older than the previous generation (kept one back for readers mid-load) and stray temps."""
    stale = []
    for p in index_dir.glob(f"{VECTORS_PREFIX}*"):
        stem = p.name[len(VECTORS_PREFIX) :].split(".")[0]
        if p.name.endswith(".tmp") or not stem.isdigit() or int(stem) < live - 1 or int(stem) > live:
            stale.append(p)
    return stale
