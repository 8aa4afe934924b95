"""Query latency, memory, build time and recall@10 (vs exact search) per FAISS index type and index size.

    python benchmarks/vector_index.py --sizes 10000,100000 --out benchmarks/out/vector_index.json
    python benchmarks/vector_index.py --sizes 1000000 --types flat,sq8 --append --out benchmarks/out/vector_index.json
    python benchmarks/vector_index.py --vectors db.npy --text-queries t.npy --image-queries i.npy   # real embeddings

Indexes are built by mmsearch's own code (faiss_index.plan_for + build_index), so the numbers are those of
what `mmsearch index --index-type KIND` builds. Without real CLIP weights the vectors are synthetic, shaped like
CLIP's (see `synth_clip`): the generator is documented in benchmarks/README.md and its measured cosines are
saved in the JSON, so they can be compared with real embeddings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch.stores.faiss_index import build_index, plan_for
from mmsearch.stores.faiss_store import FaissStore

K = 10
KINDS = ("flat", "ivf", "sq8", "ivfpq", "hnsw")
NPROBE_SWEEP = (4, 16, 32, 64, 128, 256, 512, 1024)
# milvus-lite answers in ~1 s per query here: time only this many queries (recall uses them all)
MILVUS_LATENCY_QUERIES = 20
EF_SWEEP = (32, 64, 128, 256, 512)


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def synth_clip(n: int, dim: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image-side database vectors, image-like queries and text-like queries with a CLIP-like modality gap.

    Database: a mixture of 1,000 gaussian clusters (scenes) around one shared mean direction, as CLIP image
    embeddings share a large common component (mean pairwise cosine ~0.5). Image-like queries: database vectors
    plus noise (another frame of the same shot; cosine ~0.9 to their source). Text-like queries: a separate
    "text" mean direction plus a pull toward a target image vector, so a text query has cosine ~0.3 to its target
    and ~0.1-0.2 to the rest, like real CLIP text-image pairs.
    """
    rng = np.random.default_rng(seed)
    image_mean = unit(rng.standard_normal((1, dim)))[0]
    text_mean = unit(rng.standard_normal((1, dim)))[0]
    centres = unit(1.1 * image_mean + rng.standard_normal((1_000, dim)) / np.sqrt(dim))
    db = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in chunks: 1M x 512 float64 noise would need 4 GiB
        m = min(100_000, n - start)
        scene = rng.integers(0, len(centres), m)
        db[start : start + m] = unit(centres[scene] + 0.9 * rng.standard_normal((m, dim)) / np.sqrt(dim))
    targets = db[rng.integers(0, n, n_queries)]
    image_q = unit(targets + 0.5 * rng.standard_normal((n_queries, dim)) / np.sqrt(dim))
    targets = db[rng.integers(0, n, n_queries)]
    text_q = unit(text_mean + 0.6 * targets + 0.9 * rng.standard_normal((n_queries, dim)) / np.sqrt(dim))
    return db, image_q, text_q


def cosine_stats(db: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How close queries are to their best match and to random database vectors (to compare with real CLIP)."""
    sample = db[np.random.default_rng(1).integers(0, len(db), 1_000)]
    top1 = np.einsum("ij,ij->i", queries, db[truth[:, 0]])
    return {
        "top1_cosine_p50": round(float(np.median(top1)), 3),
        "random_cosine_p50": round(float(np.median(queries @ sample.T)), 3),
    }


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def exact_top(db: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(db.shape[1])
    flat.add(db)
    return flat.search(queries, K)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)])), 4)


def latencies(index: Any, queries: np.ndarray) -> dict[str, float]:
    single = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q[None, :], K)
        single.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    index.search(queries, K)
    batch = (time.perf_counter() - t0) * 1e3
    return {
        "single_p50_ms": round(float(np.percentile(single, 50)), 3),
        "single_p95_ms": round(float(np.percentile(single, 95)), 3),
        "batch_ms": round(batch, 2),
        "batch_per_query_ms": round(batch / len(queries), 4),
    }


def sweep(index: Any, kind: str, queries: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> list[dict]:
    """Recall per search-time knob (nprobe for IVF kinds, efSearch for HNSW): what the defaults were chosen from."""
    import faiss

    rows = []
    if kind in ("ivf", "sq8", "ivfpq"):
        ivf = faiss.extract_index_ivf(index)
        knob, values, default = "nprobe", [v for v in NPROBE_SWEEP if v <= ivf.nlist], ivf.nprobe
    elif kind == "hnsw":
        ivf = faiss.downcast_index(index.index).hnsw
        knob, values, default = "efSearch", list(EF_SWEEP), ivf.efSearch
    else:
        return rows
    for v in values:
        setattr(ivf, knob, v)
        row: dict[str, float] = {knob: v}
        for name, q in queries.items():
            row[f"recall_{name}"] = recall(index.search(q, K)[1], truth[name])
        row["single_p50_ms"] = latencies(index, queries["text"][:50])["single_p50_ms"]
        rows.append(row)
    setattr(ivf, knob, default)
    return rows


def measure(kind: str, db: np.ndarray, queries: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict:
    import faiss

    n, dim = db.shape
    plan = plan_for(n, dim, kind)
    before = rss_mib()
    t0 = time.perf_counter()
    index = build_index(plan, dim, np.arange(n, dtype=np.int64), db)
    build_s = time.perf_counter() - t0
    rss_delta = rss_mib() - before
    row: dict[str, Any] = {"size": n, "dim": dim, "type": plan.kind, "params": plan.params()}
    row["build_s"] = round(build_s, 2)
    row["rss_delta_mib"] = round(rss_delta, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.faiss"
        faiss.write_index(index, str(path))
        row["index_bytes"] = path.stat().st_size
        row["bytes_per_vector"] = round(path.stat().st_size / n, 1)
        before = rss_mib()
        mapped = FaissStore.load(path, "cpu", plan, mmap=True)
        row["mmap_load_rss_mib"] = round(rss_mib() - before, 1)
        row["mmapped"] = mapped.mmapped
        del mapped
    for name, q in queries.items():
        row[f"recall_{name}"] = recall(index.search(q, K)[1], truth[name])
    row.update(latencies(index, queries["text"]))
    row["sweep"] = sweep(index, plan.kind, queries, truth)
    del index
    return row


def milvus_row(db: np.ndarray, queries: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> dict:
    """milvus-lite with a FLAT index, through mmsearch's MilvusStore: insert time, latency, recall."""
    from mmsearch.stores.milvus_store import MilvusStore

    n, dim = db.shape
    with tempfile.TemporaryDirectory() as tmp:
        store = MilvusStore.create(str(Path(tmp) / "bench.db"), "bench", dim)
        t0 = time.perf_counter()
        store.add(np.arange(n), db)
        store.persist(Path(tmp), 1)
        build_s = time.perf_counter() - t0

        class Adapter:  # MilvusStore.search returns a SearchResult; latencies() wants faiss's (D, I)
            def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
                res = store.search(q, k)
                return res.scores, res.ids

        adapter = Adapter()
        row: dict[str, Any] = {"size": n, "dim": dim, "type": "milvus-lite", "params": "FLAT, IP"}
        row["build_s"] = round(build_s, 2)
        for name, q in queries.items():
            row[f"recall_{name}"] = recall(adapter.search(q, K)[1], truth[name])
        row.update(latencies(adapter, queries["text"][:MILVUS_LATENCY_QUERIES]))
        store.close()
    return row


def load_or_make(args: argparse.Namespace, n: int) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    if args.vectors:
        db = unit(np.load(args.vectors)[:n])
        queries = {"text": unit(np.load(args.text_queries))}
        if args.image_queries:
            queries["image"] = unit(np.load(args.image_queries))
        return db, queries, f"user vectors {args.vectors}"
    db, image_q, text_q = synth_clip(n, args.dim, args.queries)
    return db, {"text": text_q, "image": image_q}, "synthetic CLIP-like (synth_clip)"


def run(args: argparse.Namespace) -> list[dict]:
    import faiss

    faiss.omp_set_num_threads(args.threads)
    rows = []
    for n in args.sizes:
        db, queries, source = load_or_make(args, n)
        n = len(db)
        truth = {name: exact_top(db, q) for name, q in queries.items()}
        stats = {name: cosine_stats(db, q, truth[name]) for name, q in queries.items()}
        print(f"n={n} dim={db.shape[1]} vectors: {source}; query cosines {stats}", flush=True)
        for kind in args.types:
            if kind == "ivfpq" and n < 10_000:
                continue
            row = measure(kind, db, queries, truth)
            row.update(source=source, cosines=stats, threads=args.threads)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "sweep"}), flush=True)
        if args.milvus and n <= args.milvus_max:
            rows.append(milvus_row(db, queries, truth))
            print(json.dumps(rows[-1]), flush=True)
        del db
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for kind in sorted({r["type"] for r in rows}):
        pts = sorted((r for r in rows if r["type"] == kind), key=lambda r: r["size"])
        sizes = [r["size"] for r in pts]
        axes[0].plot(sizes, [r["single_p50_ms"] for r in pts], "o-", label=kind)
        axes[1].plot(sizes, [r["recall_text"] for r in pts], "o-", label=f"{kind} text")
        if all("recall_image" in r for r in pts):
            axes[1].plot(sizes, [r["recall_image"] for r in pts], "x--", label=f"{kind} image")
        if all("bytes_per_vector" in r for r in pts):
            axes[2].plot(sizes, [r["bytes_per_vector"] for r in pts], "o-", label=kind)
    axes[0].set(xscale="log", yscale="log", xlabel="vectors", ylabel="single-query p50 (ms)", title="latency")
    axes[1].set(xscale="log", xlabel="vectors", ylabel="recall@10 vs exact", title="recall (text / image queries)")
    axes[1].axhline(0.95, color="grey", lw=0.8)
    axes[2].set(xscale="log", xlabel="vectors", ylabel="bytes per vector (file)", title="memory")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000", help="comma-separated database sizes")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--types", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    p.add_argument("--queries", type=int, default=200, help="queries of each modality (synthetic)")
    p.add_argument("--threads", type=int, default=1, help="faiss OpenMP threads")
    p.add_argument("--milvus", action="store_true", help="also measure milvus-lite (FLAT)")
    p.add_argument("--milvus-max", type=int, default=100_000, help="largest size measured with milvus-lite")
    p.add_argument("--vectors", help=".npy of real database embeddings (rows L2-normalised here)")
    p.add_argument("--text-queries", help=".npy of real text-query embeddings (with --vectors)")
    p.add_argument("--image-queries", help=".npy of real image-query embeddings (with --vectors)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/vector_index.json"))
    p.add_argument("--append", action="store_true", help="merge into --out (replacing equal size+type rows)")
    args = p.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.types = [t for t in args.types.split(",") if t]
    if args.vectors and not args.text_queries:
        p.error("--vectors needs --text-queries")
    rows = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.append and args.out.exists():
        new = {(r["size"], r["type"]) for r in rows}
        rows = [r for r in json.loads(args.out.read_text())["rows"] if (r["size"], r["type"]) not in new] + rows
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
