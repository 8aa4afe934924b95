"""Frame decode speed of decord and PyAV in one run: 1 fps sampling of 720p H.264, sampled frames per second.

    python benchmarks/decode.py --seconds 60 --repeats 2 --out benchmarks/results/decode.json

The video is generated (lavfi testsrc2, 1280x720, 25 fps, libx264 at its default preset) so both decoders read
the same bytes. Each decoder runs `--repeats` times in alternation; the best run counts (the machine may be
shared). Both go through `ingest.decoders.frame_decoder`, i.e. they decode, sample and scale to 448 px exactly
as the ingest does. Real-time factor = video seconds decoded per wall second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from mmsearch.ingest.decoders import DECODERS, frame_decoder, installed
from mmsearch.ingest.discover import probe


def make_720p(path: Path, seconds: int) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc2=s=1280x720:r=25:d={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip


def time_decoder(name: str, path: Path, fps: float) -> tuple[float, int]:
    media = probe(path)
    t0 = time.perf_counter()
    frames = sum(len(batch.times) for batch in frame_decoder(name)(media, fps, 32))
    return time.perf_counter() - t0, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of the generated 720p video")
    parser.add_argument("--fps", type=float, default=1.0, help="sampling rate")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decode.json"))
    args = parser.parse_args()
    names = [n for n in DECODERS if installed(n)]
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "720p.mp4"
        make_720p(video, args.seconds)
        best: dict[str, tuple[float, int]] = {}
        for _ in range(args.repeats):
            for name in names:
                seconds, frames = time_decoder(name, video, args.fps)
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, frames)
    results = {
        name: {
            "seconds": round(sec, 3),
            "sampled_frames": frames,
            "sampled_frames_per_s": round(frames / sec, 2),
            "video_seconds_per_s": round(args.seconds / sec, 2),
        }
        for name, (sec, frames) in best.items()
    }
    report = {
        "video": f"{args.seconds}s 1280x720 H.264 25 fps (testsrc2)",
        "sampling_fps": args.fps,
        "repeats": args.repeats,
        "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
