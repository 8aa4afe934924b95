"""OCR recall of the words on screen, before and after "OCR where text is" (issue 25), and what each costs.

    python benchmarks/ocr_recall.py [--videos 6] [--out benchmarks/results/ocr_recall.json]

Generated videos: drawtext captions one after another (two or three words each, 16-36 px, white / yellow / black,
with and without a box) on still colours, colour bars and the moving `testsrc2` pattern (which also draws a frame
counter and a timecode). Frames sampled at 1 fps, as ingest does. Compared on the same frames:
  before  every changed frame through RapidOCR detection + recognition at the frame's size (the old stage);
  after   `OcrTracker`: detection on a downscaled frame, recognition of new or changed boxes only, lines tracked.
Recall: the share of caption words found (case-insensitive) in a line overlapping the caption's time. Also the
number of OCR segments, detector runs, boxes recognised and seconds, with the load average.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from mmsearch.ingest.ocr import MIN_CHARS, MIN_SCORE, OcrLine, OcrTracker, RapidOcrEngine, changed, thumbnail
from mmsearch.testing import captions as captions_module
from mmsearch.testing.captions import BACKGROUNDS, Caption, make_captioned_video, random_captions

FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
)


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def frames_at_1fps(video: Path) -> list[tuple[float, np.ndarray]]:
    import av

    out = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and abs(frame.time - round(frame.time)) < 1e-3:
                out.append((float(round(frame.time)), frame.to_ndarray(format="rgb24")))
    return out


def before(engine: RapidOcrEngine, frames: list[tuple[float, np.ndarray]]) -> tuple[list[OcrLine], dict[str, int]]:
    """The old stage: each changed frame read whole (detection + recognition), a line per distinct text."""
    raw = engine._engine  # the benchmark reaches into its own engine to run the old full pass
    lines: list[OcrLine] = []
    last = None
    reads = 0
    for t, frame in frames:
        thumb = thumbnail(frame)
        if changed(last, thumb):
            last, reads = thumb, reads + 1
            out = raw(np.ascontiguousarray(frame[:, :, ::-1]), use_det=True, use_cls=False, use_rec=True)
            texts = (
                []
                if out.txts is None
                else [str(x).strip() for x, s in zip(out.txts, out.scores, strict=False) if s >= MIN_SCORE]
            )
            current = [x for x in texts if len(x) >= MIN_CHARS]
        lines += [OcrLine(t, t + 1.0, x) for x in current]
    return lines, {"detector_runs": reads, "boxes_recognised": -1}


def after(
    engine: RapidOcrEngine, frames: list[tuple[float, np.ndarray]], end: float
) -> tuple[list[OcrLine], dict[str, int]]:
    tracker = OcrTracker(engine)
    for t, frame in frames:
        tracker.add(frame, t, 1.0)
    stats = {"detector_runs": tracker.frames_read, "boxes_recognised": tracker.crops_read}
    return tracker.finish(end), stats


def recall(captions: list[Caption], lines: list[OcrLine]) -> tuple[int, int]:
    found = total = 0
    for caption in captions:
        seen = " ".join(x.text.lower() for x in lines if x.start < caption.end and x.end > caption.start)
        words = re.findall(r"[a-z0-9]+", caption.text.lower())
        total += len(words)
        found += sum(1 for w in words if re.search(rf"\b{w}\b", seen) or w in seen.replace(" ", ""))
    return found, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--captions", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ocr_recall.json")
    args = parser.parse_args()
    rng = random.Random(25)
    engine = RapidOcrEngine.load()
    load_before = loadavg()
    totals: dict[str, dict[str, float]] = {
        m: {"found": 0, "words": 0, "segments": 0, "seconds": 0.0, "detector_runs": 0} for m in ("before", "after")
    }
    backgrounds = [*BACKGROUNDS, "testsrc2"]
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.videos):
            captions = random_captions(rng, args.captions)
            fonts = [Path(f) for f in FONTS if Path(f).is_file()]
            if fonts:  # several fonts: one per video, in turn
                captions_module.find_font = functools.partial(Path, fonts[n % len(fonts)])
            duration = captions[-1].end + 1.0
            background = backgrounds[n % len(backgrounds)]
            video = make_captioned_video(Path(tmp) / f"v{n}.mp4", captions, duration, background=background, fps=5)
            frames = frames_at_1fps(video)
            for mode in ("before", "after"):
                start = time.perf_counter()
                lines, stats = before(engine, frames) if mode == "before" else after(engine, frames, duration)
                seconds = time.perf_counter() - start
                found, words = recall(captions, lines)
                segments = len(lines) if mode == "after" else len({x.text for x in lines})
                row = totals[mode]
                row["found"] += found
                row["words"] += words
                row["segments"] += segments
                row["seconds"] += seconds
                row["detector_runs"] += stats["detector_runs"]
                print(f"{background:12s} {mode:6s} recall {found}/{words} segments {segments} {seconds:.1f} s")
    result = {
        mode: {**row, "recall": round(row["found"] / max(row["words"], 1), 3)} for mode, row in totals.items()
    } | {"loadavg": {"before": load_before, "after": loadavg()}, "videos": args.videos}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
