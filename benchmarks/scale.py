"""Archive scale: 100k to 10M segments on one machine — build, file sizes, RSS, recall, warm and cold latency.

    python benchmarks/scale.py --sizes 100000 1000000 --out benchmarks/out/scale.json
    python benchmarks/scale.py --sizes 3000000 10000000 --full-max 3000000 --out benchmarks/out/scale-big.json

Two parts per size N (benchmarks/README.md, "Issue 27", has the figures, their load and how long each part takes):

vectors  the FAISS index kinds mmsearch builds (`faiss_index.build_index`, trained on its sample) over N synthetic
         CLIP-like vectors (`vector_index.synth_clip`'s generator, streamed in chunks so that 10M x 512 floats are
         never in memory at once), written to a file and opened memory-mapped in a *new process* as a reader opens
         it: file size, open time, RSS after opening and after the queries, and per nprobe / efSearch setting
         recall@10 against exact search (held-out text-like and image-like queries, truth computed by streaming)
         with single-query p50 / p95.
full     (N <= --full-max) an index written through mmsearch's own IndexWriter (benchmarks/serve.py's synthetic
         writer: 150 frames + 50 speech segments per file, transcripts of random words, a `text` space of 384-d
         vectors so that every channel that a text query can use is on), then: build time and segments/s, file
         sizes, `mmsearch serve` RSS, warm HTTP p50 / p95, where the time goes per stage (benchmarks/query_stages.py,
         in-process), a new `mmsearch query` process (cold, no server) and the same command through the server.

Every row records the load average before and after it: figures taken under load say so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from query_stages import print_stages, profile_stages  # noqa: E402
from serve import (  # noqa: E402
    build_synthetic_index,
    cli_latency,
    model_dim_and_embed_ms,
    queries,
    query_towers,
    server_process,
    warm_latency,
)
from vector_index import EF_SWEEP, NPROBE_SWEEP, K, recall  # noqa: E402

from mmsearch.server.discovery import read_announcement  # noqa: E402
from mmsearch.testing.server import free_port  # noqa: E402
from mmsearch.testing.vectors import CHUNK, SynthClip, exact_top  # noqa: E402

DEFAULT_KINDS = ("ivf", "sq8", "ivfpq", "hnsw")
# Kinds whose build needs more than this machine's time or memory above these sizes (IVF-Flat holds 4 bytes per
# dimension: 20 GiB at 10M; HNSW with efConstruction 200 builds at a few hundred vectors/s on two shared cores).
KIND_MAX = {"ivf": 3_000_000, "hnsw": 100_000}
CLOSED_PORT_URL = "http://127.0.0.1:9"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def exact_truth(gen: SynthClip, n: int, qs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: exact_top(gen.chunks(n), q) for name, q in qs.items()}


def build_kind(gen: SynthClip, n: int, kind: str, path: Path) -> dict[str, Any]:
    """mmsearch's index of `kind` for n vectors: trained on its own sample (build_index), vectors added in chunks."""
    import faiss

    from mmsearch.stores.faiss_index import build_index, plan_for

    plan = plan_for(n, gen.dim, kind)
    t0 = time.perf_counter()
    sample = np.concatenate([c for _, c in gen.chunks(min(n, 64 * max(plan.nlist, 1), 10 * CHUNK))])
    index = build_index(plan, gen.dim, np.zeros(0, np.int64), sample)  # trains only (no ids)
    trained = time.perf_counter() - t0
    del sample
    for start, chunk in gen.chunks(n):
        index.add_with_ids(chunk, np.arange(start, start + len(chunk), dtype=np.int64))
    built = time.perf_counter() - t0
    faiss.write_index(index, str(path))
    del index
    return {
        "type": plan.kind,
        "params": plan.params(),
        "train_s": round(trained, 1),
        "build_s": round(built, 1),
        "vectors_per_s": round(n / built),
        "file_bytes": path.stat().st_size,
        "bytes_per_vector": round(path.stat().st_size / n, 1),
    }


def probe(path: Path, kind: str, params: str, qfile: Path, tfile: Path) -> dict[str, Any]:
    """Run in a new process: open the file as a reader does (memory-mapped), then sweep the search knob."""
    import faiss

    from mmsearch.stores.faiss_index import plan_from_manifest
    from mmsearch.stores.faiss_store import FaissStore

    faiss.omp_set_num_threads(1)
    before = rss_mib()
    t0 = time.perf_counter()
    store = FaissStore.load(path, "cpu", plan_from_manifest(kind, params), mmap=True)
    row: dict[str, Any] = {"open_s": round(time.perf_counter() - t0, 3), "mmapped": store.mmapped}
    row["rss_after_open_mib"] = round(rss_mib() - before, 1)
    qs = dict(np.load(qfile))
    truth = dict(np.load(tfile))
    row["sweep"] = sweep(store.index, kind, qs, truth)
    row["rss_after_queries_mib"] = round(rss_mib() - before, 1)
    return row


def sweep(index: Any, kind: str, qs: dict[str, np.ndarray], truth: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    import faiss

    if kind == "hnsw":
        knob, target, values = "efSearch", faiss.downcast_index(index.index).hnsw, EF_SWEEP + (1024,)
    elif kind != "flat":
        target = faiss.extract_index_ivf(index)
        knob, values = "nprobe", tuple(v for v in NPROBE_SWEEP if v <= target.nlist)
    else:
        target, knob, values = None, "", (0,)
    default = getattr(target, knob) if target is not None else 0
    rows = []
    for v in values:
        if target is not None:
            setattr(target, knob, v)
        row: dict[str, Any] = {knob or "exact": v, "default": v == default}
        row.update({f"recall_{name}": recall(index.search(q, K)[1], truth[name]) for name, q in qs.items()})
        times = []
        for q in qs["text"][:100]:
            t0 = time.perf_counter()
            index.search(q[None, :], K)
            times.append((time.perf_counter() - t0) * 1e3)
        row["p50_ms"], row["p95_ms"] = (round(float(np.percentile(times, p)), 3) for p in (50, 95))
        rows.append(row)
    return rows


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def vector_part(n: int, args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    gen = SynthClip(args.dim)
    qs = gen.queries(n, args.queries)
    t0 = time.perf_counter()
    truth = exact_truth(gen, n, qs)
    qfile, tfile = work / "queries.npz", work / "truth.npz"
    np.savez(qfile, **qs)
    np.savez(tfile, **truth)
    print(f"n={n}: exact truth by streaming in {time.perf_counter() - t0:.1f} s", flush=True)
    rows = []
    for kind in args.types:
        if n > KIND_MAX.get(kind, n):
            print(f"n={n}: {kind} skipped (above {KIND_MAX[kind]:,})", flush=True)
            continue
        path = work / f"{kind}.faiss"
        row: dict[str, Any] = {"size": n, "load_before": load(), **build_kind(gen, n, kind, path)}
        cmd = [sys.executable, __file__, "--probe", str(path), row["type"], row["params"], str(qfile), str(tfile)]
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        row.update(json.loads(done.stdout.strip().splitlines()[-1]))
        row["load_after"] = load()
        path.unlink()
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def dir_bytes(index_dir: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in index_dir.iterdir():
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        key = p.name.split("-")[0] if p.name[:1] != "." else p.name
        out[key] = out.get(key, 0) + size
    return out


def process_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def full_part(n: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    gen = SynthClip(args.dim)
    index_dir = work / f"index-{n}"
    row: dict[str, Any] = {"size": n, "load_before": load()}
    t0 = time.perf_counter()
    build_synthetic_index(
        index_dir, n, args.model, args.dim, args.runtime_record, vectors=gen.chunk, text_space=args.text_space
    )
    built = time.perf_counter() - t0
    row.update(build_s=round(built, 1), segments_per_s=round(n / built), load_after_build=load())
    texts = queries(args.warm)
    row["cold_cli"] = cli_latency(index_dir, texts[: args.cold], CLOSED_PORT_URL)  # first one builds the BM25 cache
    row["files_bytes"] = dir_bytes(index_dir)
    row["stages"] = profile_stages(index_dir, texts)
    print_stages(row["stages"])
    with server_process(index_dir, free_port()) as url:
        row["warm_http"] = warm_latency(url, texts)
        served = read_announcement(index_dir)
        row["server_rss_mib"] = process_rss_mib(served.pid) if served is not None else None
        row["cli_via_server"] = cli_latency(index_dir, texts[: args.cold], None)
    row["load_after"] = load()
    shutil.rmtree(index_dir, ignore_errors=True)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--types", nargs="+", default=list(DEFAULT_KINDS), help="FAISS kinds of the vectors part")
    parser.add_argument("--full-max", type=int, default=3_000_000, help="largest size that also gets a full index")
    parser.add_argument("--no-vectors", action="store_true", help="skip the vectors part")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=200, help="held-out queries of each kind (recall)")
    parser.add_argument("--warm", type=int, default=100, help="warm queries (HTTP and per stage)")
    parser.add_argument("--cold", type=int, default=3, help="new `mmsearch query` processes")
    parser.add_argument("--model", default="random:ViT-B-32")
    parser.add_argument("--no-text-space", dest="text_space", action="store_false")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/scale.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mmsearch-scale-", dir=args.work))
    result: dict[str, Any] = {"command": " ".join(sys.argv), "machine": machine(), "vectors": [], "full": []}
    try:
        if any(n <= args.full_max for n in args.sizes):
            towers = query_towers(args.model, "default")
            from mmsearch.models.precision import runtime_record

            args.runtime_record = runtime_record(towers)
            args.dim, result["text_embed_in_process"] = model_dim_and_embed_ms(towers, queries(20, seed=3))
        for n in args.sizes:
            if not args.no_vectors:
                result["vectors"] += vector_part(n, args, work)
            if n <= args.full_max:
                result["full"].append(full_part(n, args, work))
            save(result, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


def machine() -> dict[str, Any]:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpus": os.cpu_count(), "ram_gib": round(total / 2**30, 1), "platform": platform.platform()}


def save(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        path, kind, params, qfile, tfile = sys.argv[2:7]
        print(json.dumps(probe(Path(path), kind, params, Path(qfile), Path(tfile))))
    else:
        main()
