"""Readers during commits: how many `mmsearch query/info/check` processes fail while a writer commits per image.

    python benchmarks/readers_during_commit.py --images 600 --out benchmarks/results/readers_during_commit.json
    python benchmarks/readers_during_commit.py --code /work/main ...   # the same against another checkout

A writer indexes --images tiny generated images with `--commit-interval 0` (one commit each) while one loop per
command runs the CLI in fresh processes against the same index. A run counts as failed when it exits non-zero,
or (check) when it reports a problem. Prints and saves the tried/failed counts per command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

COMMANDS = {"query": ["query", "red", "--json", "-k", "3"], "info": ["info", "--json"], "check": ["check", "--json"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.code), "COLUMNS": "200"}

    def cli(*words: str) -> list[str]:
        return [sys.executable, "-m", "mmsearch", *words]

    with tempfile.TemporaryDirectory() as tmp:
        media, index_dir = Path(tmp) / "media", Path(tmp) / "idx"
        rng = np.random.default_rng(0)
        (media / "more").mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(media / "first.png")
        first = cli("index", str(media), "--index", str(index_dir), "--model", "test:hash", "--no-asr")
        subprocess.run(first, env=env, check=True, capture_output=True)
        for i in range(args.images):
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(media / "more" / f"{i:05d}.png")
        tried: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        examples: dict[str, str] = {}
        stop = threading.Event()

        def loop(name: str) -> None:
            while not stop.is_set():
                proc = subprocess.run(cli(*COMMANDS[name], "--index", str(index_dir)), env=env, capture_output=True)
                tried[name] += 1
                bad = proc.returncode != 0 or (name == "check" and json.loads(proc.stdout)["problems"])
                if bad:
                    failed[name] += 1
                    examples.setdefault(name, (proc.stderr.decode() or proc.stdout.decode())[-300:])

        t0 = time.perf_counter()
        writer_cmd = cli(
            "index", str(media), "--index", str(index_dir), "--no-asr", "--no-shots", "--commit-interval", "0"
        )
        writer = subprocess.Popen(writer_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threads = [threading.Thread(target=loop, args=(n,)) for n in COMMANDS]
        for t in threads:
            t.start()
        _, err = writer.communicate()
        stop.set()
        for t in threads:
            t.join()
        result = {
            "code": str(args.code),
            "images": args.images,
            "writer_exit": writer.returncode,
            "writer_seconds": round(time.perf_counter() - t0, 1),
            "tried": dict(tried),
            "failed": dict(failed),
            "examples": examples,
            "machine": "shared, loaded (2 cores, other agents running)",
        }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
