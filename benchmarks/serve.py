"""`mmsearch serve`: warm HTTP query latency, cold CLI latency, concurrent throughput, and serving through commits.

    python benchmarks/serve.py --sizes 10000 100000 --out benchmarks/out/serve.json

Per size, a synthetic index is written through mmsearch's own writer (`Index.write`) (random unit vectors for frames and
speech, transcripts of words drawn from mmsearch.testing.media.SENTENCES), so the query path measured is the
real one: `mmsearch serve` in its own process, its Searcher embedding the query text with the index's model
(default random:ViT-B-32: the real ViT-B/32 text tower's compute, untrained weights), FAISS, BM25, fusion.

  warm      p50/p95 of GET /api/search over HTTP (one client, after warm-up)
  cold_cli  `mmsearch query TEXT --json` as a new process that loads the index itself (--server at a closed port)
  cli_via_server  the same command finding the running server through the index's server file
  concurrent      N clients (threads) sharing a fixed number of queries: wall time, queries/s, errors

Then a small index of generated media is served while `mmsearch index` adds more files to it (committing every
--commit-interval) and `mmsearch remove` drops one: clients query throughout; every non-200 is counted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from query_stages import print_stages, profile_stages

from mmsearch.index.facade import Index
from mmsearch.testing.media import SENTENCES, Shot, make_video
from mmsearch.testing.server import free_port
from mmsearch.types import MediaFile, MediaKind, Segment, SegmentKind, SpaceVectors

FRAMES_PER_FILE = 150  # a 2.5-minute video sampled at 1 fps
SPEECH_PER_FILE = 50
CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing listens: the CLI falls back to loading the index itself
TEXT_SPACE, TEXT_SPACE_MODEL, TEXT_SPACE_DIM = "text", "all-MiniLM-L6-v2", 384
WORDS = sorted({w.strip(".,").lower() for s in SENTENCES for w in s.split()})


def build_synthetic_index(
    index_dir: Path,
    segments: int,
    model: str,
    dim: int,
    runtime: dict[str, str] | None = None,
    seed: int = 0,
    vectors: Callable[[int, int], np.ndarray] | None = None,
    text_space: bool = False,
) -> None:
    """`runtime`: the manifest entries `mmsearch index` writes for the towers it embedded with; the server then
    embeds queries with the same towers (on a CPU, by default, the int8 ONNX ones). `vectors(i, m)`: the m CLIP
    vectors of file i (default: random unit vectors). `text_space`: speech segments also get random 384-d vectors
    in the `text` space (all-MiniLM-L6-v2), so that the text channel is on."""
    rng = np.random.default_rng(seed)
    words = random.Random(seed)
    per_file = FRAMES_PER_FILE + SPEECH_PER_FILE
    with Index.write(index_dir, model, untrained=True, device="cpu") as writer:
        writer.open_vectors(lambda: dim)
        if text_space:
            writer.use_space(TEXT_SPACE, TEXT_SPACE_MODEL, TEXT_SPACE_DIM)
        for i in range((segments + per_file - 1) // per_file):
            media = MediaFile(Path(f"/synthetic/video{i:05d}.mp4"), MediaKind.VIDEO, 1, 1, True, 150.0, 320, 240)
            rows = [Segment(SegmentKind.FRAME, float(t), float(t + 1)) for t in range(FRAMES_PER_FILE)]
            rows += [
                Segment(SegmentKind.SPEECH, 3.0 * j, 3.0 * j + 3, " ".join(words.choice(WORDS) for _ in range(14)))
                for j in range(SPEECH_PER_FILE)
            ]
            if vectors is not None:
                clip = vectors(i, len(rows))
            else:
                clip = rng.standard_normal((len(rows), dim)).astype(np.float32)
                clip /= np.linalg.norm(clip, axis=1, keepdims=True)
            spaces = {}
            if text_space:
                text = rng.standard_normal((SPEECH_PER_FILE, TEXT_SPACE_DIM)).astype(np.float32)
                text /= np.linalg.norm(text, axis=1, keepdims=True)
                spaces[TEXT_SPACE] = SpaceVectors(tuple(range(FRAMES_PER_FILE, per_file)), text)
            writer.add_file(media, hashlib.sha256(str(i).encode()).hexdigest(), rows, clip, spaces=spaces)
        writer.record(runtime or {})
        writer.commit()


def query_towers(model: str, runtime: str) -> Any:
    """The CLIP towers an index of `model` gets from `mmsearch index` here (`default`: int8 ONNX on a CPU when its
    self-check passes), or PyTorch fp32 (`torch`)."""
    from mmsearch.models.precision import EmbedChoice
    from mmsearch.models.registry import load_embedder

    return load_embedder(model, "cpu", EmbedChoice() if runtime == "default" else EmbedChoice("torch", "fp32"))


def model_dim_and_embed_ms(embedder: Any, texts: list[str]) -> tuple[int, dict[str, float]]:
    """The model's dimension, and what embedding one query text costs here (1 thread, as the server runs it)."""
    from mmsearch.server.live import limit_threads

    limit_threads(1)
    dim = int(embedder.embed_texts(["x"]).shape[1])
    times = []
    for text in texts:
        t0 = time.perf_counter()
        embedder.embed_texts([text])
        times.append(time.perf_counter() - t0)
    return dim, percentiles(times)


@contextmanager
def server_process(index_dir: Path, port: int) -> Iterator[str]:
    """`mmsearch serve` as its own process (as a user runs it); yields once it prints its "serving" line, which
    it does after loading every model a query needs (so the first query is timed as a user's would be)."""
    cmd = [sys.executable, "-m", "mmsearch", "serve", "--index", str(index_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("serving"):
                break
        else:
            raise RuntimeError(f"server did not start: {proc.stderr.read() if proc.stderr else ''}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)}


def queries(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4))) for _ in range(n)]


def first_query_ms(url: str, text: str) -> float:
    """The first query a freshly started server answers (issue 23: within 2x of the warm p50). The client is made
    first: httpx builds its SSL context (the CA bundle) when a client is created, which is no part of the server."""
    with httpx.Client(base_url=url, timeout=300) as client:
        t0 = time.perf_counter()
        client.get("/api/search", params={"q": text}).raise_for_status()
        return round((time.perf_counter() - t0) * 1000, 1)


def warm_latency(url: str, texts: list[str]) -> dict[str, Any]:
    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for text in texts[:5]:
            client.get("/api/search", params={"q": text}).raise_for_status()
        for text in texts:
            t0 = time.perf_counter()
            client.get("/api/search", params={"q": text}).raise_for_status()
            times.append(time.perf_counter() - t0)
    return {"queries": len(texts), **percentiles(times)}


def cli_latency(index_dir: Path, texts: list[str], server: str | None) -> dict[str, Any]:
    times = []
    for text in texts:
        cmd = [sys.executable, "-m", "mmsearch", "query", text, "--index", str(index_dir), "--json"]
        cmd += ["--server", server] if server else []
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return {"queries": len(texts), **percentiles(times), "mean_s": round(float(np.mean(times)), 2)}


def concurrent(url: str, texts: list[str], clients: int) -> dict[str, Any]:
    """`clients` threads share the queries; every response must be a 200."""
    errors: list[str] = []
    todo = iter(texts)
    lock = threading.Lock()

    def client_loop() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while True:
                with lock:
                    text = next(todo, None)
                if text is None:
                    return
                response = client.get("/api/search", params={"q": text})
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:200]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "clients": clients,
        "queries": len(texts),
        "wall_s": round(wall, 2),
        "qps": round(len(texts) / wall, 1),
        "errors": len(errors),
        "first_errors": errors[:3],
    }


def measure_size(size: int, model: str, dim: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    index_dir = work / f"index-{size}"
    t0 = time.perf_counter()
    build_synthetic_index(index_dir, size, model, dim, args.runtime_record)
    built = time.perf_counter() - t0
    texts = queries(args.queries)
    cold = cli_latency(index_dir, texts[: args.cold], CLOSED_PORT_URL)
    stages = profile_stages(index_dir, texts)
    print_stages(stages)
    with server_process(index_dir, free_port()) as url:
        first = first_query_ms(url, "first query after start")
        info = httpx.get(url + "/api/info").json()
        row = {
            "segments": sum(info["segments"].values()),
            "index_type": info["index_type"],
            "build_s": round(built, 1),
            "first_query_ms": first,
            "warm_http": warm_latency(url, texts),
            "cold_cli": cold,
            "cli_via_server": cli_latency(index_dir, texts[: args.cold], None),
            "concurrent": concurrent(url, queries(args.throughput_queries, seed=2), args.clients),
            "stages_in_process": stages,
            "load_avg": os.getloadavg(),
        }
    shutil.rmtree(index_dir, ignore_errors=True)
    print(json.dumps(row), flush=True)
    return row


def serve_through_commits(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Clients query a served index while `mmsearch index` commits into it and `mmsearch remove` trims it."""
    first, more = work / "media-first", work / "media-more"
    first.mkdir()
    more.mkdir()
    colours = ["red", "green", "blue", "yellow", "white", "magenta", "cyan", "orange", "purple", "gray"]
    make_video(first / "v0.mp4", [Shot("red", 2), Shot("testsrc", 2)], audio=False)
    for i, colour in enumerate(colours[: args.commit_files]):
        make_video(more / f"v{i + 1}.mp4", [Shot(colour, 2), Shot("mandelbrot", 2), Shot("smptebars", 2)], audio=False)
    index_dir = work / "index-commits"
    mm = [sys.executable, "-m", "mmsearch"]
    common = ["--index", str(index_dir), "--model", "test:hash", "--no-asr"]
    subprocess.run([*mm, "index", str(first), *common], check=True, capture_output=True)
    statuses: Counter[int] = Counter()  # HTTP status -> count; 0 = no response at all (connection error)
    generations: set[int] = set()
    stop = threading.Event()
    lock = threading.Lock()

    def client_loop(url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while not stop.is_set():
                for path in ("/api/search?q=red&top_k=20", "/api/info"):
                    try:
                        response = client.get(path)
                        status = response.status_code
                    except httpx.HTTPError:
                        status = 0
                    with lock:
                        statuses[status] += 1
                        if path == "/api/info" and status == 200:
                            generations.add(response.json()["generation"])

    with server_process(index_dir, free_port()) as url:
        threads = [threading.Thread(target=client_loop, args=(url,)) for _ in range(4)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        interval = ["--commit-interval", str(args.commit_interval)]
        subprocess.run([*mm, "index", str(more), *common, *interval], check=True, capture_output=True)
        subprocess.run(
            [*mm, "remove", str(first / "v0.mp4"), "--index", str(index_dir)], check=True, capture_output=True
        )
        writing = time.perf_counter() - t0
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join()
        final = httpx.get(url + "/api/search", params={"q": "red", "top_k": 100}).json()["results"]
        info = httpx.get(url + "/api/info").json()
    return {
        "files_added": args.commit_files,
        "commit_interval_s": args.commit_interval,
        "writing_s": round(writing, 1),
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "failed_requests": sum(v for k, v in statuses.items() if k != 200),
        "generations_seen": sorted(generations),
        "final_files": info["files"],
        "removed_file_in_results": any(r["path"].endswith("/v0.mp4") for r in final),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--model", default="random:ViT-B-32")
    parser.add_argument(
        "--runtime", choices=("default", "torch"), default="default",
        help="query towers: what `mmsearch index` picks here (default) or PyTorch fp32 (torch)",
    )  # fmt: skip
    parser.add_argument("--queries", type=int, default=100, help="warm queries per size")
    parser.add_argument("--cold", type=int, default=3, help="cold CLI runs per size (each loads the model)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--throughput-queries", type=int, default=400)
    parser.add_argument("--commit-files", type=int, default=8, help="0 skips the serving-through-commits part")
    parser.add_argument("--commit-interval", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/serve.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mmsearch-serve-bench-"))
    try:
        from mmsearch.models.precision import runtime_record

        towers = query_towers(args.model, args.runtime)
        args.runtime_record = runtime_record(towers)
        dim, embed = model_dim_and_embed_ms(towers, queries(20, seed=3))
        print(json.dumps({"text_embed_in_process": embed}), flush=True)
        sizes = [measure_size(n, args.model, dim, args, work) for n in args.sizes]
        commits = serve_through_commits(work, args) if args.commit_files else None
        print(json.dumps(commits), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "model": args.model,
        "query_towers": args.runtime_record or {"embed_runtime": "torch", "embed_precision": "fp32"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg_at_end": os.getloadavg()},
        "text_embed_in_process": embed,
        "sizes": sizes,
        "serve_through_commits": commits,
        "command": " ".join(sys.argv),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
