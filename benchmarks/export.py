"""Export and clip cutting speed (issue 28): 1,000 moments written in each format, and clips cut per second.

    python benchmarks/export.py --moments 1000 --clips 20 --out benchmarks/results/export.json

Moments are drawn at random (seeded) across the real footage in shared/media-real (friday.mp4 30 fps, the Tears
of Steel clip 24 fps, the street footage 12.5 fps), 1-8 s long, with 0.5 s handles. Per format: seconds to probe
the sources and plan the cuts (once, shared), then seconds to build the timeline and write it with the format's
adapter, and the size written. Clips: `mmsearch clip`'s library call, stream copy (the default) and --exact
(H.264 re-encode), clips per second and media seconds per second. The load average is recorded beside them: the
machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from mmsearch.export.clips import ClipSpec, cut_clip
from mmsearch.export.cuts import plan_cuts, probe_source
from mmsearch.export.formats import FORMATS, render
from mmsearch.types import Moment, SegmentKind

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "media-real"
SOURCES = ("friday.mp4", "tears-of-steel-battle-clip-medium.webm", "intel_car-detection.mp4")


def moments(count: int, seed: int) -> list[Moment]:
    rng = random.Random(seed)
    lengths = {name: probe_source(REAL / name).duration or 0.0 for name in SOURCES}
    out = []
    for i in range(count):
        name = rng.choice(SOURCES)
        span = rng.uniform(1.0, min(8.0, lengths[name] - 0.5))
        start = rng.uniform(0.0, lengths[name] - span)
        kind = SegmentKind.SPEECH if i % 3 == 0 else SegmentKind.FRAME
        text = f"moment {i}: what was said" if kind is SegmentKind.SPEECH else None
        out.append(Moment(str(REAL / name), kind, round(start, 3), round(start + span, 3), 1.0 - i / count, text))
    return out


def time_exports(found: list[Moment]) -> dict[str, object]:
    began = time.perf_counter()
    cuts = plan_cuts(found, handles=0.5)
    planned = time.perf_counter() - began
    formats = {}
    for name, fmt in FORMATS.items():
        began = time.perf_counter()
        text = render(cuts, fmt, "benchmark")
        formats[name] = {"seconds": round(time.perf_counter() - began, 3), "bytes": len(text.encode())}
        print(f"{name:7s} {formats[name]['seconds']:7.2f} s  {formats[name]['bytes'] / 1e6:6.2f} MB")
    return {"moments": len(found), "plan_seconds": round(planned, 3), "formats": formats}


def time_clips(found: list[Moment], count: int, exact: bool) -> dict[str, float]:
    chosen = found[:count]
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        for m in chosen:
            assert m.start is not None and m.end is not None
            cut_clip(ClipSpec(Path(m.path), m.start, m.end), Path(tmp), exact)
        took = time.perf_counter() - began
    media = sum((m.end or 0) - (m.start or 0) for m in chosen)
    result = {"clips": count, "seconds": round(took, 2), "clips_per_s": round(count / took, 2),
              "media_s_per_s": round(media / took, 1)}  # fmt: skip
    print(f"clips {'exact' if exact else 'copy '}  {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moments", type=int, default=1000)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--seed", type=int, default=28)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/export.json"))
    args = parser.parse_args()
    found = moments(args.moments, args.seed)
    load_before = os.getloadavg()[0]
    report = {
        "export": time_exports(found),
        "clip_copy": time_clips(found, args.clips, exact=False),
        "clip_exact": time_clips(found, max(1, args.clips // 4), exact=True),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"load {report['load_avg_1m']} -> {args.out}")


if __name__ == "__main__":
    main()
