"""Which FAISS index an index directory uses, and how it is built: the size rule and its parameters.

Auto rule (`--index-type auto`, the default), re-applied by the writer at every commit:

  vectors            index      why
  < 50,000           flat       exact; one query costs ~0.7 ms at 10k and ~33 ms at 100k on one shared core
  50,000 - 999,999   ivf        IVF-Flat: exact distances inside the probed lists, same memory as flat
  >= 1,000,000       sq8        IVF with 8-bit scalar quantization: a quarter of the memory, recall ~ IVF-Flat

An IVF index is retrained on the index's own vectors when the index has grown RETRAIN_GROWTH times past the
number it was trained on (its lists would otherwise grow long and slow). `ivfpq` and `hnsw` are never picked by
the rule; they are there as overrides (`--index-type`): ivfpq for archives that do not fit in memory otherwise
(it loses recall, see benchmarks/README.md), hnsw for the lowest latency on read-mostly archives (FAISS HNSW
cannot remove vectors, so every commit that removes some rebuilds the graph).

Parameters keep recall@10 >= 0.95 against exact search for text-like queries, which sit far from every image
vector (CLIP's modality gap) and so land near many IVF cell borders: measured by benchmarks/vector_index.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import UsageError

IndexKind = Literal["flat", "ivf", "sq8", "ivfpq", "hnsw"]
INDEX_KINDS: tuple[str, ...] = ("flat", "ivf", "sq8", "ivfpq", "hnsw")
INDEX_TYPE_CHOICES: tuple[str, ...] = ("auto", *INDEX_KINDS)

# Below this, exact search is fast enough (benchmarks/README.md: single-query p50 0.7 ms at 10k, 33 ms at 100k)
# and an IVF would have too few points per list to train well.
FLAT_MAX_VECTORS = 50_000
# From here IVF-SQ8 replaces IVF-Flat: 1M flat 512-d vectors take 2 GiB, SQ8 takes 0.5 GiB at ~equal recall.
SQ8_MIN_VECTORS = 1_000_000
# Retrain once the index holds this many times the vectors its IVF was trained on.
RETRAIN_GROWTH = 4
# nlist ~ 4 sqrt(n), the low end of faiss's guideline (4..16 sqrt(n)): fewer, larger lists need fewer probes
# for queries far from every centroid (text queries), at a small latency cost.
NLIST_PER_SQRT_N = 4
NLIST_MIN, NLIST_MAX = 16, 65_536
# faiss warns below 39 training points per centroid; 64 keeps k-means stable and training time bounded.
TRAIN_POINTS_PER_LIST = 64
# k-means iterations: IVF recall barely moves past ~10 iterations; training time is linear in them.
KMEANS_NITER = 10
# Probed lists: nlist / NPROBE_DIVISOR, at least NPROBE_MIN. Chosen with benchmarks/vector_index.py: at 100k
# (nlist 1024) text-like recall@10 is 0.94 with nlist/16 and >= 0.95 with nlist/8; image-like queries reach 0.99
# with nlist/16 already (benchmarks/README.md).
NPROBE_DIVISOR = 8
NPROBE_MIN = 16
# IVF-PQ: one byte per 8 dimensions (64 bytes for 512-d).
PQ_DIMS_PER_BYTE = 8
# PQ codebooks have 256 centroids per sub-quantizer: fewer training points than that cannot train them.
PQ_MIN_TRAIN = 256 * 39
# HNSW: M links per node (memory 2*M*4 bytes per vector beyond the vector itself), construction and search
# beam widths. Text-like queries sit far from the image vectors and need both a better-built graph and a wide
# beam: at 100k, efConstruction 80 / efSearch 512 gave 0.91 recall@10, efConstruction 200 gives 0.94 at
# efSearch 512 and 0.97 at 1024 (image-like queries: 1.0). The auto rule still never picks HNSW: it cannot
# remove vectors in place and builds slowly (benchmarks/README.md).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 1024


@dataclass(frozen=True)
class IndexPlan:
    """What to build: the kind and its parameters. Recorded in the manifest as `index_type` / `index_params`."""

    kind: IndexKind
    nlist: int = 0
    nprobe: int = 0
    pq_m: int = 0
    trained_on: int = 0

    def params(self) -> str:
        if self.kind == "flat":
            return ""
        if self.kind == "hnsw":
            return f"M={HNSW_M},efSearch={HNSW_EF_SEARCH}"
        extra = f",m={self.pq_m}" if self.kind == "ivfpq" else ""
        return f"nlist={self.nlist},nprobe={self.nprobe}{extra},trained_on={self.trained_on}"


def check_index_type(requested: str) -> str:
    if requested not in INDEX_TYPE_CHOICES:
        raise UsageError(f"--index-type must be one of {', '.join(INDEX_TYPE_CHOICES)}, got {requested!r}")
    return requested


def auto_kind(n: int) -> IndexKind:
    if n < FLAT_MAX_VECTORS:
        return "flat"
    return "ivf" if n < SQ8_MIN_VECTORS else "sq8"


def nlist_for(n: int) -> int:
    """A power of two near 4 sqrt(n), and never more lists than the vectors can train."""
    target = NLIST_PER_SQRT_N * math.sqrt(max(n, 1))
    nlist = 2 ** round(math.log2(max(target, 1)))
    nlist = min(max(nlist, NLIST_MIN), NLIST_MAX)
    return max(1, min(nlist, n // 39))


def nprobe_for(nlist: int) -> int:
    return min(nlist, max(NPROBE_MIN, nlist // NPROBE_DIVISOR))


def pq_m_for(dim: int) -> int:
    """Sub-quantizers: dim / 8, or the largest divisor of dim below that (PQ needs m | dim)."""
    m = max(1, dim // PQ_DIMS_PER_BYTE)
    while dim % m:
        m -= 1
    return m


def plan_for(n: int, dim: int, requested: str) -> IndexPlan:
    """The index to build for n vectors. A trained kind asked for with too few vectors stays flat until then."""
    kind: IndexKind = auto_kind(n) if requested == "auto" else requested  # type: ignore[assignment]
    if kind in ("ivf", "sq8", "ivfpq") and (n < 39 or (kind == "ivfpq" and n < PQ_MIN_TRAIN)):
        kind = "flat"
    if kind in ("flat", "hnsw"):
        return IndexPlan(kind)
    nlist = nlist_for(n)
    return IndexPlan(kind, nlist, nprobe_for(nlist), pq_m_for(dim) if kind == "ivfpq" else 0, n)


def needs_rebuild(current: IndexPlan, n: int, dim: int, requested: str) -> bool:
    wanted = plan_for(n, dim, requested)
    if wanted.kind != current.kind:
        return True
    return current.trained_on > 0 and n > RETRAIN_GROWTH * current.trained_on


def _faiss() -> Any:
    import faiss

    return faiss


def empty_index(plan: IndexPlan, dim: int) -> Any:
    """An untrained, empty index of the plan's kind whose ids are the caller's ids."""
    faiss = _faiss()
    ip = faiss.METRIC_INNER_PRODUCT
    if plan.kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if plan.kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, ip)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap2(hnsw)
    codes = {"ivf": "Flat", "sq8": "SQ8", "ivfpq": f"PQ{plan.pq_m}"}[plan.kind]
    # IVF keeps the caller's ids in its lists (IDMap would break: IVF does not renumber on removal);
    # a hashtable direct map makes reconstruct(id) and remove_ids work.
    index = faiss.index_factory(dim, f"IVF{plan.nlist},{codes}", ip)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.nprobe = plan.nprobe
    return index


def build_index(plan: IndexPlan, dim: int, ids: np.ndarray, vectors: np.ndarray) -> Any:
    """Train on (a sample of) the vectors themselves, then add them all."""
    index = empty_index(plan, dim)
    if plan.kind in ("ivf", "sq8", "ivfpq"):
        faiss = _faiss()
        sample = _train_sample(vectors, plan.nlist)
        faiss.extract_index_ivf(index).cp.niter = KMEANS_NITER
        if plan.kind == "ivfpq":
            index.pq.cp.niter = KMEANS_NITER
            index.do_polysemous_training = False  # only serves Hamming filtering, which mmsearch does not use
        index.train(sample)
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def _train_sample(vectors: np.ndarray, nlist: int) -> np.ndarray:
    want = TRAIN_POINTS_PER_LIST * nlist
    if len(vectors) <= want:
        return vectors
    pick = np.random.default_rng(0).choice(len(vectors), want, replace=False)
    return vectors[np.sort(pick)]


def plan_from_manifest(kind: str, params: str) -> IndexPlan:
    values = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index type {kind!r}")
    return IndexPlan(
        kind,  # type: ignore[arg-type]
        nlist=int(values.get("nlist", 0)),
        nprobe=int(values.get("nprobe", 0)),
        pq_m=int(values.get("m", 0)),
        trained_on=int(values.get("trained_on", 0)),
    )


def kind_of(index: Any) -> IndexKind:
    """The kind of a loaded index, read from the index itself (so old files without a manifest entry work)."""
    faiss = _faiss()
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(inner, faiss.IndexIVFScalarQuantizer):
        return "sq8"
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    return "flat"


def mmap_flag(kind: IndexKind) -> int:
    """IVF lists map through OnDiskInvertedLists (IO_FLAG_MMAP); flat codes, also HNSW's, via IO_FLAG_MMAP_IFC."""
    faiss = _faiss()
    if kind in ("ivf", "sq8", "ivfpq"):
        return int(faiss.IO_FLAG_MMAP)
    return int(getattr(faiss, "IO_FLAG_MMAP_IFC", 0))


# Bytes held per vector by each kind at dimension d (ids included), for docs and `mmsearch info`.
def bytes_per_vector(kind: IndexKind, dim: int) -> int:
    ids = 8
    if kind == "flat":
        return 4 * dim + 2 * ids  # IDMap2 keeps ids both ways
    if kind == "hnsw":
        return 4 * dim + 2 * HNSW_M * 4 + 2 * ids
    code = {"ivf": 4 * dim, "sq8": dim, "ivfpq": pq_m_for(dim)}[kind]
    return code + ids + 16  # + the direct map's hashtable entry
