"""Cost of the faces stage: seconds per media second, alone and as a share of ingest time.

    python benchmarks/faces.py --out benchmarks/results/faces.json

1. Stage alone: each video of ../shared/media-real and of the composed face archive (mmsearch.testing.faces) is
   decoded as ingest decodes it (1 frame a second, 448 px), then the frames go through `FaceTracker`; the time
   of that loop per media second, with frames looked at, descriptors computed and tracks found.
2. Share of ingest: `run_ingest` over the same videos with the faces stage on (the default CLIP tower picked by
   `mmsearch index` with --model, no ASR, no OCR), and the faces stage's seconds over the run's total
   (goal <= 25 %). The same run with faces off is timed beside it.

Figures mean little without the machine's load: /proc/loadavg is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from mmsearch.ingest.decode import iter_frames
from mmsearch.ingest.discover import probe
from mmsearch.ingest.extras import ExtrasOptions
from mmsearch.ingest.faces import DlibFaces, FaceTracker
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.testing.faces import compose_archive

MEDIA_REAL = Path(__file__).resolve().parents[2] / "shared" / "media-real"
VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov"}


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def stage_alone(engine: DlibFaces, path: Path) -> dict[str, object]:
    media = probe(path)
    frames = [
        (f, float(t), b.interval) for b in iter_frames(media, 1.0) for f, t in zip(b.frames, b.times, strict=True)
    ]
    tracker = FaceTracker(engine)
    t0 = time.perf_counter()
    for frame, t, interval in frames:
        tracker.add(frame, t, interval)
    tracks = tracker.finish(media.duration)
    seconds = time.perf_counter() - t0
    duration = media.duration or 0.0
    return {
        "file": path.name,
        "media_seconds": round(duration, 2),
        "frames": tracker.frames_seen,
        "looked_at": tracker.frames_read,
        "descriptors": tracker.described,
        "tracks": len(tracks),
        "stage_seconds": round(seconds, 3),
        "seconds_per_media_second": round(seconds / duration, 4) if duration else None,
    }


def ingest_share(videos: list[Path], model: str, faces: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="mmsearch-faces-bench-") as tmp:
        options = IngestOptions(
            paths=tuple(videos),
            index_dir=Path(tmp) / "index",
            model=model,
            asr=None,
            workers=1,
            extras=ExtrasOptions(ocr=False, text_model=None, faces=faces),
        )
        summary = run_ingest(options)
    times = summary.times
    work = times.total - times.load
    return {
        "faces": faces,
        "media_seconds": round(summary.media_seconds, 2),
        "total_seconds": round(times.total, 3),
        "load_seconds": round(times.load, 3),
        "faces_seconds": round(times.faces, 3),
        "faces_share_of_ingest": round(times.faces / work, 4) if faces and work > 0 else None,
        "times": times.to_json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="random:ViT-B-32", help="CLIP spec for the ingest runs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/faces.json"))
    parser.add_argument("--no-ingest", action="store_true", help="only the stage-alone figures")
    args = parser.parse_args()
    load_before = loadavg()
    engine = DlibFaces.load()
    with tempfile.TemporaryDirectory(prefix="mmsearch-faces-media-") as tmp:
        composed = sorted(v.path for v in compose_archive(Path(tmp) / "composed").values())
        real = sorted(p for p in MEDIA_REAL.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        result: dict[str, object] = {
            "machine": f"{platform.machine()} {os.cpu_count()} cpu(s)",
            "load_before": load_before,
            "stage_alone": {
                "media_real": [stage_alone(engine, p) for p in real],
                "composed": [stage_alone(engine, p) for p in composed],
            },
        }
        if not args.no_ingest:
            result["ingest"] = {
                name: [ingest_share(videos, args.model, faces) for faces in (False, True)]
                for name, videos in (("media_real", real), ("composed", composed))
            }
    result["load_after"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
