"""Embedding speed (issue 15): image-tower frames/s per runtime, agreement with fp32, model loading, ingest wall time.

    python benchmarks/embed.py --model random:ViT-B-32 --out benchmarks/out/embed.json

One run measures everything, so the ratios compare like with like on a shared machine:
  1. model loading in fresh processes: import torch / open_clip, model build with and without random init,
     weight load from a checkpoint file, tokenizer; and the whole load per runtime (torch fp32, ONNX cached);
  2. frames/s of the image tower (torch fp32, ONNX fp32, ONNX int8; torch fp16 when CUDA is there) on the same
     decoded 640×360 frames, best of --rounds interleaved rounds, preprocessing included; cosine to torch fp32;
  3. ingest wall time of the same generated media (long static shots + footage that changes every second) with
     torch fp32 / ONNX int8, each with and without dedupe, and the share of sampled frames dedupe embeds.

`random:ARCH` weights are the only CLIP weights on an offline machine: compute is that of the real model, the
agreement figures are for random weights (real weights must be checked the same way; the self-check does).
The checkpoint used for the weight-load timing is those random weights saved to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mmsearch.index.catalog import Catalog
from mmsearch.ingest.decode import iter_frames
from mmsearch.ingest.discover import discover
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.models.precision import EmbedChoice
from mmsearch.models.registry import load_embedder
from mmsearch.paths import CATALOG_FILE
from mmsearch.testing.media import Shot, make_video

# Fresh-process load timings: printed as JSON by a child python, so imports are not already warm.
LOAD_BREAKDOWN = r"""
import json, sys, time
spec, ckpt = sys.argv[1], sys.argv[2]
arch = spec.split(":", 1)[1]
t = {}
t0 = time.perf_counter(); import torch; t["import_torch"] = time.perf_counter() - t0
t0 = time.perf_counter(); import open_clip; t["import_open_clip"] = time.perf_counter() - t0
from mmsearch.models.clip import _no_random_init, _open_clip
_open_clip()  # registers mmsearch's own test architectures
t0 = time.perf_counter(); open_clip.create_model(arch, pretrained=None); t["build_with_random_init"] = time.perf_counter() - t0
t0 = time.perf_counter()
with _no_random_init():
    model = open_clip.create_model(arch, pretrained=None)
t["build_without_init"] = time.perf_counter() - t0
t0 = time.perf_counter(); open_clip.load_checkpoint(model, ckpt); t["load_checkpoint"] = time.perf_counter() - t0
t0 = time.perf_counter(); open_clip.get_tokenizer(arch); t["tokenizer_first"] = time.perf_counter() - t0
t0 = time.perf_counter(); open_clip.create_model(arch, pretrained=ckpt); t["open_clip_create_model_from_checkpoint"] = time.perf_counter() - t0
print(json.dumps(t))
"""

LOAD_RUNTIME = r"""
import json, sys, time
t0 = time.perf_counter()
from mmsearch.models.precision import EmbedChoice
from mmsearch.models.registry import load_embedder
e = load_embedder(sys.argv[1], "cpu", EmbedChoice(sys.argv[2], sys.argv[3]))
e.embed_texts(["warm"])
print(json.dumps({"load_s": time.perf_counter() - t0, "modules": sorted(m for m in ("open_clip", "timm", "torchvision") if m in sys.modules)}))
"""


def child(code: str, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_media(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    static = [Shot("red", 20), Shot("smptebars", 20), Shot("#2040c0", 20)]
    changing = [Shot("testsrc", 15), Shot("mandelbrot", 15)]
    size = (640, 360)
    make_video(root / "static.mp4", static, size=size, audio=False)
    make_video(root / "changing.mp4", changing, size=size, audio=False)
    return {"static": root / "static.mp4", "changing": root / "changing.mp4"}


def bench_frames(model: str, frames: list[np.ndarray], rounds: int) -> dict[str, object]:
    """frames/s of each runtime's image tower on the same frames; cosine of each to torch fp32."""
    choices = {
        "torch_fp32": EmbedChoice("torch", "fp32"),
        "onnx_fp32": EmbedChoice("onnx", "fp32"),
        "onnx_int8": EmbedChoice("onnx", "int8"),
    }
    embedders = {}
    for name, choice in choices.items():
        t0 = time.perf_counter()
        embedders[name] = load_embedder(model, "cpu", choice)
        print(f"loaded {name} in {time.perf_counter() - t0:.1f} s (ONNX: first use includes the export)", flush=True)
    best = dict.fromkeys(choices, float("inf"))
    vectors = {}
    for emb in embedders.values():
        emb.embed_images(frames[:4])  # warm-up (onnxruntime allocates its arena on the first run)
    for _ in range(rounds):
        for name, emb in embedders.items():
            t0 = time.perf_counter()
            vectors[name] = emb.embed_images(frames)
            best[name] = min(best[name], time.perf_counter() - t0)
            print(f"  {name}: {len(frames) / best[name]:.1f} frames/s", flush=True)
    out: dict[str, object] = {}
    for name in choices:
        cos = (vectors[name] * vectors["torch_fp32"]).sum(axis=1)
        out[name] = {
            "frames_per_s": round(len(frames) / best[name], 2),
            "cos_to_torch_fp32_mean": round(float(cos.mean()), 6),
            "cos_to_torch_fp32_min": round(float(cos.min()), 6),
        }
    out["int8_speedup_vs_torch_fp32"] = round(best["torch_fp32"] / best["onnx_int8"], 2)
    out["int8_speedup_vs_onnx_fp32"] = round(best["onnx_fp32"] / best["onnx_int8"], 2)
    out["int8_record"] = embedders["onnx_int8"].runtime_record()  # type: ignore[attr-defined]
    return out


def frame_counts(index_dir: Path) -> dict[str, int]:
    catalog = Catalog.open(index_dir / CATALOG_FILE, readonly=True)
    try:
        rows = catalog._conn.execute(
            "SELECT f.path, COUNT(*) FROM segments s JOIN files f ON f.id = s.file_id WHERE s.kind = 'frame' GROUP BY f.path"
        ).fetchall()
    finally:
        catalog.close()
    return {Path(path).stem: int(n) for path, n in rows}


def bench_ingest(model: str, media_dir: Path, work: Path) -> dict[str, object]:
    runs: dict[str, object] = {}
    for name, choice, dedupe in (
        ("torch_fp32", EmbedChoice("torch", "fp32"), False),
        ("torch_fp32_dedupe", EmbedChoice("torch", "fp32"), True),
        ("onnx_int8", EmbedChoice("onnx", "int8"), False),
        ("onnx_int8_dedupe", EmbedChoice("onnx", "int8"), True),
    ):
        index_dir = work / f"index-{name}"
        options = IngestOptions(
            paths=(media_dir,), index_dir=index_dir, model=model, asr=None, device="cpu", embed=choice, dedupe=dedupe
        )
        t0 = time.perf_counter()
        summary = run_ingest(options)
        wall = time.perf_counter() - t0
        runs[name] = {
            "wall_s": round(wall, 2),
            "times": summary.times.to_json(),
            "frames_embedded": frame_counts(index_dir),
        }
        print(f"ingest {name}: {wall:.1f} s, {runs[name]['frames_embedded']}", flush=True)
    sampled = runs["torch_fp32"]["frames_embedded"]  # type: ignore[index]
    kept = runs["onnx_int8_dedupe"]["frames_embedded"]  # type: ignore[index]
    runs["dedupe_share_embedded"] = {k: round(kept[k] / sampled[k], 3) for k in sampled}
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="random:ViT-B-32")
    parser.add_argument("--frames", type=int, default=48, help="frames per speed round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/embed.json"))
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmsearch-embed-") as tmp:
        work = Path(tmp)
        os.environ["MMSEARCH_CACHE"] = str(work / "cache")  # a cold cache: the export is measured too
        result: dict[str, object] = {
            "model": args.model,
            "cpus": os.cpu_count(),
            "load_average_before": os.getloadavg(),
        }
        media = make_media(work / "media")
        video = discover([media["changing"]]).files[0]
        frames = [f for batch in iter_frames(video, 2.0, 32) for f in batch.frames][: args.frames]
        t0 = time.perf_counter()
        load_embedder(args.model, "cpu", EmbedChoice("onnx", "int8"))
        result["onnx_first_use_s"] = round(time.perf_counter() - t0, 1)
        result["speed"] = bench_frames(args.model, frames, args.rounds)
        arch = args.model.split(":", 1)[1]
        ckpt = work / "random-weights.pt"
        import torch

        torch.save(load_embedder(args.model, "cpu").model.state_dict(), ckpt)  # type: ignore[attr-defined]
        result["load_breakdown"] = child(LOAD_BREAKDOWN, args.model, str(ckpt))
        spec_ckpt = f"{arch}:{ckpt}"
        load_embedder(spec_ckpt, "cpu", EmbedChoice("onnx", "int8"))  # export keyed by the checkpoint's hash
        result["load_per_runtime"] = {
            "torch_fp32_checkpoint": child(LOAD_RUNTIME, spec_ckpt, "torch", "fp32"),
            "onnx_int8_cached": child(LOAD_RUNTIME, spec_ckpt, "onnx", "int8"),
        }
        if not args.skip_ingest:
            result["ingest"] = bench_ingest(args.model, work / "media", work)
        result["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
