"""Shot boundary detection quality and cost: TransNetV2 vs PySceneDetect (adaptive) on hard cuts, fades through
black and dissolves made with ffmpeg (`xfade`), as boundary F1 at +-0.5 s and seconds per video-minute.

    python benchmarks/shots.py --shots 6 --seconds 4 --out benchmarks/out/shots.json

A boundary is where one shot gives way to the next: the cut frame, or the middle of a fade or dissolve. A
detected boundary matches a true one within the tolerance, each used once. Time includes decoding (the detector
is fed by the same pass that samples frames for embedding) and is measured in this process on the CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from mmsearch.ingest.shots import detect_shots

SOURCES = ("testsrc2", "mandelbrot", "smptebars", "life", "rgbtestsrc", "cellauto", "testsrc", "yuvtestsrc")
TRANSITIONS = {"hard cut": None, "fade through black": "fadeblack", "dissolve": "fade"}
TRANSITION_SECONDS = 1.0


def make_video(path: Path, kind: str | None, shots: int, seconds: float, size: str = "320x240") -> list[float]:
    """Render `shots` lavfi sources joined by `kind` (None: hard cuts); returns the true boundary times."""
    inputs: list[str] = []
    for i in range(shots):
        inputs += ["-t", str(seconds), "-f", "lavfi", "-i", f"{SOURCES[i % len(SOURCES)]}=size={size}:rate=25"]
    # xfade and concat want one pixel format and sample aspect ratio across inputs.
    prep = ";".join(f"[{i}:v]format=yuv420p,setsar=1[s{i}]" for i in range(shots)) + ";"
    if kind is None:
        graph = prep + "".join(f"[s{i}]" for i in range(shots)) + f"concat=n={shots}:v=1:a=0[v]"
        truth = [seconds * k for k in range(1, shots)]
    else:
        d = TRANSITION_SECONDS
        steps, last, truth = [], "s0", []
        for k in range(1, shots):
            offset = k * (seconds - d)
            out = f"x{k}"
            steps.append(f"[{last}][s{k}]xfade=transition={kind}:duration={d}:offset={offset}[{out}]")
            truth.append(offset + d / 2)
            last = out
        graph = prep + ";".join(steps).rsplit("[", 1)[0] + "[v]"
    cmd = ["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(cmd, check=True)
    return truth


def f1(found: list[float], truth: list[float], tolerance: float = 0.5) -> dict[str, float]:
    unused = list(truth)
    hits = 0
    for t in found:
        best = min(unused, key=lambda u: abs(u - t), default=None)
        if best is not None and abs(best - t) <= tolerance:
            unused.remove(best)
            hits += 1
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(score, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--detectors", nargs="+", default=["transnetv2", "adaptive"])
    parser.add_argument("--transitions", nargs="+", default=list(TRANSITIONS), help="names from TRANSITIONS")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/shots.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmsearch-shots-") as tmp:
        for name in args.transitions:
            kind = TRANSITIONS[name]
            path = Path(tmp) / f"{name.replace(' ', '_')}.mp4"
            truth = make_video(path, kind, args.shots, args.seconds)
            for detector in args.detectors:
                detect_shots(path, None, detector)  # warm-up: model load is not per-video cost
                t0 = time.perf_counter()
                scenes = detect_shots(path, None, detector)
                took = time.perf_counter() - t0
                found = [a for a, _ in scenes[1:]]
                minutes = (scenes[-1][1] if scenes else 1.0) / 60
                row = {"transition": name, "detector": detector, **f1(found, truth),
                       "s_per_video_minute": round(took / minutes, 2), "found": [round(t, 2) for t in found],
                       "truth": [round(t, 2) for t in truth]}  # fmt: skip
                print(json.dumps(row))
                rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": "python benchmarks/shots.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if k != "out"), "rows": rows}, indent=2))  # fmt: skip
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
