"""Vector store: a FAISS index whose ids are the catalog's segment ids.

Writes are atomic: each commit saves a new generation file beside the old one (write, fsync, rename) and the
catalog's manifest names the live generation inside the same SQLite transaction that adds the segments.
A crash at any instant therefore leaves a manifest pointing to a complete file that matches the catalog.
The manifest also records the file's checksum, so damage to a generation file is detected, not searched.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import REPAIR_HINT, CorruptIndex, DiskFull, UsageError, is_disk_full
from ..paths import display_path
from .faiss_files import file_checksum, generation_file
from .faiss_index import (
    HNSW_EF_SEARCH,
    IndexKind,
    IndexPlan,
    build_index,
    bytes_per_vector,
    empty_index,
    kind_of,
    mmap_flag,
    needs_rebuild,
    plan_for,
)
from .protocol import Device, SearchResult, empty_result

log = logging.getLogger(__name__)


def _faiss() -> Any:
    import faiss  # deferred: importing faiss costs time and is not needed for `--help`

    return faiss


def gpu_count() -> int:
    faiss = _faiss()
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get else 0


def use_gpu(device: Device) -> bool:
    """`auto` picks the GPU when this faiss build reports one; `gpu` and `cuda` insist on it."""
    n = gpu_count()
    if device in ("gpu", "cuda") and n == 0:
        raise UsageError("--device gpu: this faiss build sees no GPU", hint="install faiss-gpu on a CUDA machine")
    return device != "cpu" and n > 0


# faiss GPU indexes answer at most k = 2048 per query (and nprobe <= 2048); deeper searches run on the CPU copy.
GPU_MAX_K = 2048
# Replicate the index on every GPU (each answers whole queries: best throughput) while it is smaller than this;
# above, shard it (each GPU holds 1/n: fits n times more). 8 GiB fits next to the model on a 16 GB GPU.
GPU_SHARD_ABOVE_BYTES = 8 * 2**30
GPU_MODE_ENV = "MMSEARCH_GPU_MODE"
GpuMode = Literal["auto", "replicate", "shard"]


def gpu_mode(index_bytes: int) -> Literal["replicate", "shard"]:
    """$MMSEARCH_GPU_MODE (replicate|shard) wins; else shard only what would not fit replicated."""
    chosen = os.environ.get(GPU_MODE_ENV, "auto")
    if chosen not in ("auto", "replicate", "shard"):
        raise UsageError(f"${GPU_MODE_ENV} must be auto, replicate or shard, got {chosen!r}")
    if chosen != "auto":
        return chosen  # type: ignore[return-value]
    return "shard" if index_bytes > GPU_SHARD_ABOVE_BYTES else "replicate"


class FaissStore:
    """Inner-product search over L2-normalised vectors (cosine similarity), exact or approximate.

    `requested` is the --index-type (auto or a kind); `persist` re-applies the size rule of faiss_index.py and
    rebuilds the index from its own vectors when the rule asks for another kind or a retrain.
    """

    def __init__(
        self, index: Any, dim: int, device: Device = "auto", plan: IndexPlan | None = None, requested: str = "auto"
    ) -> None:
        self.index = index
        self.dim = dim
        self.device = device
        self.plan = plan or IndexPlan(kind_of(index))
        self.requested = requested
        self.mmapped = False
        self._gpu_index: Any = None
        self._pending_removal: set[int] = set()

    @classmethod
    def create(cls, dim: int, device: Device = "auto", requested: str = "auto") -> FaissStore:
        plan = plan_for(0, dim, requested)
        return cls(empty_index(plan, dim), dim, device, plan, requested)

    @classmethod
    def load(cls, path: Path, device: Device = "auto", plan: IndexPlan | None = None, mmap: bool = False) -> FaissStore:
        """Read a generation file; `mmap` maps it read-only where faiss can (readers only: it cannot change)."""
        if not path.is_file():
            raise CorruptIndex(f"vector file {display_path(path)} named by the manifest is missing", hint=REPAIR_HINT)
        index, mapped = _read_index(path, plan.kind if plan else None, mmap)
        if plan is not None and plan.kind != kind_of(index):
            plan = None  # the file is the truth about its own kind
        store = cls(index, int(index.d), device, plan)
        store.mmapped = mapped
        store._apply_search_params()
        return store

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal) - len(self._pending_removal)

    @property
    def kind(self) -> IndexKind:
        return self.plan.kind

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise CorruptIndex(f"vector dimension {vectors.shape[1]} does not match the index ({self.dim})")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self._pending_removal.intersection(ids.tolist()):
            self.optimize()  # an id removed and added again before the commit: drop the old vector first
        self.index.add_with_ids(vectors, ids)
        self._gpu_index = None

    def remove(self, ids: np.ndarray | list[int]) -> int:
        if len(ids) == 0:
            return 0
        self._gpu_index = None
        if self.kind == "hnsw":
            # FAISS HNSW cannot remove: the ids are dropped when the graph is rebuilt at the next commit.
            present = {int(i) for i in ids} & set(self.ids().tolist())
            before = len(self._pending_removal)
            self._pending_removal |= present
            return len(self._pending_removal) - before
        return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """Stored vectors by id (approximate for sq8 and ivfpq, whose codes are lossy)."""
        if not len(ids):
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64)), np.float32)

    def ids(self) -> np.ndarray:
        faiss = _faiss()
        if isinstance(self.index, faiss.IndexIDMap):
            all_ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        else:
            invlists = faiss.extract_index_ivf(self.index).invlists
            parts = [
                faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                for i in range(invlists.nlist)
                if invlists.list_size(i)
            ]
            all_ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        if self._pending_removal:
            all_ids = all_ids[~np.isin(all_ids, list(self._pending_removal))]
        return all_ids

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k + len(self._pending_removal), int(self.index.ntotal))
        if k <= 0:
            return empty_result(len(queries))
        scores, ids = self._search_index(k).search(queries, k)
        if self._pending_removal:
            ids = np.where(np.isin(ids, list(self._pending_removal)), -1, ids)
        return SearchResult(scores, ids)

    def _search_index(self, k: int) -> Any:
        # The CPU index stays the master copy for add/remove/save; a GPU clone serves searches.
        if not use_gpu(self.device):
            return self.index
        if self.kind == "hnsw" or k > GPU_MAX_K:
            log.info("searching on the CPU: faiss GPU has no HNSW and answers k <= %d", GPU_MAX_K)
            return self.index
        if self._gpu_index is None:
            self._gpu_index = self._clone_to_gpus()
        return self._gpu_index

    def _clone_to_gpus(self) -> Any:
        faiss = _faiss()
        mode = gpu_mode(self.ntotal * bytes_per_vector(self.kind, self.dim))
        options = faiss.GpuMultipleClonerOptions()
        options.shard = mode == "shard"
        options.useFloat16LookupTables = self.kind == "ivfpq"  # faiss needs it for PQ with many sub-quantizers
        log.info("cloning the %s index to %d GPU(s), %s", self.kind, gpu_count(), mode)
        gpu_index = faiss.index_cpu_to_all_gpus(self.index, co=options)
        if self.plan.nprobe:
            faiss.GpuParameterSpace().set_index_parameter(gpu_index, "nprobe", self.plan.nprobe)
        return gpu_index

    def _apply_search_params(self) -> None:
        faiss = _faiss()
        if self.kind in ("ivf", "sq8", "ivfpq") and self.plan.nprobe:
            faiss.extract_index_ivf(self.index).nprobe = self.plan.nprobe
        elif self.kind == "hnsw":
            faiss.downcast_index(self.index.index).hnsw.efSearch = HNSW_EF_SEARCH

    def optimize(self) -> bool:
        """Rebuild when the size rule wants another kind, a retrain, or HNSW has removals; True if rebuilt."""
        n = self.ntotal
        if not self._pending_removal and not needs_rebuild(self.plan, n, self.dim, self.requested):
            return False
        ids = self.ids()
        vectors = self.reconstruct(ids.tolist())
        plan = plan_for(n, self.dim, self.requested)
        log.info("building a %s index over %d vectors (was %s)", plan.kind, n, self.kind)
        self.index = build_index(plan, self.dim, ids, vectors)
        self.plan = plan
        self._pending_removal.clear()
        self._gpu_index = None
        return True

    def persist(self, index_dir: Path, generation: int) -> dict[str, str]:
        """Apply the size rule, then save generation `generation`; returns what the manifest records."""
        self.optimize()
        path = generation_file(index_dir, generation)
        self.save(path)
        return {
            "index_type": self.kind,
            "index_params": self.plan.params(),
            "index_type_requested": self.requested,
            "faiss_version": str(_faiss().__version__),
            "vectors_checksum": file_checksum(path),
        }

    def after_commit(self) -> None:
        """Nothing follows the commit: the generation file was complete before the manifest named it."""

    def sync(self, catalog_ids: list[int]) -> int:
        """A generation file always matches the catalog that names it: nothing to repair."""
        return 0

    def close(self) -> None:
        self._gpu_index = None

    def save(self, path: Path) -> None:
        """Write to a temporary name, fsync, then rename, so a reader never sees a half-written file."""
        faiss = _faiss()
        tmp = path.with_name(path.name + ".tmp")
        try:
            faiss.write_index(self.index, str(tmp))
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except (OSError, RuntimeError) as e:
            tmp.unlink(missing_ok=True)  # nothing half-written stays behind; the last commit is untouched
            if is_disk_full(e) or _free_bytes(path.parent) == 0:
                raise DiskFull(f"the disk holding {display_path(path.parent)} is full") from e
            raise
        _fsync_dir(path.parent)


def _faiss_reason(e: BaseException) -> str:
    """faiss messages start with the C++ function and source line; keep what went wrong."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    text = re.sub(r"^Error in .*? at \S+:\d+: ", "", text)
    return text.removeprefix("Error: ")[:200]


def _read_index(path: Path, kind: IndexKind | None, mmap: bool) -> tuple[Any, bool]:
    faiss = _faiss()
    if mmap:
        flag = mmap_flag(kind) if kind else int(getattr(faiss, "IO_FLAG_MMAP_IFC", 0))
        try:
            return faiss.read_index(str(path), flag), True
        except RuntimeError as e:  # an index type faiss cannot map: read it into memory instead
            log.info("memory-mapping %s failed (%s); reading it", display_path(path), _faiss_reason(e))
    try:
        return faiss.read_index(str(path)), False
    except RuntimeError as e:
        raise CorruptIndex(
            f"vector file {display_path(path)} is unreadable: {_faiss_reason(e)}", hint=REPAIR_HINT
        ) from e


def _free_bytes(directory: Path) -> int:
    try:
        st = os.statvfs(directory)
    except OSError:
        return -1
    return st.f_bavail * st.f_frsize


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
