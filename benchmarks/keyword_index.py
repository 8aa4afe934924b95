"""Cost of the BM25 keyword index: build from transcripts (first query after a commit) vs load from its cache.

    python benchmarks/keyword_index.py --sizes 1000 10000 100000 --out benchmarks/out/keyword_index.json

Documents are 14 words drawn from mmsearch.testing.media.SENTENCES (about one Whisper segment each).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from mmsearch.search.keyword import KeywordIndex
from mmsearch.testing.media import SENTENCES


def measure(n: int, rng: random.Random) -> dict[str, float]:
    words = " ".join(SENTENCES).split()
    texts = [" ".join(rng.choice(words) for _ in range(14)) for _ in range(n)]
    t0 = time.perf_counter()
    index = KeywordIndex.build(list(range(n)), texts)
    built = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="mmsearch-bm25-"))
    try:
        index.save(tmp)
        t0 = time.perf_counter()
        loaded = KeywordIndex.load(tmp)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(20):
            loaded.search("red fox jumping fences", 50)
        query_s = (time.perf_counter() - t0) / 20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"segments": n, "build_s": round(built, 3), "load_s": round(load_s, 3), "query_s": round(query_s, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/keyword_index.json"))
    args = parser.parse_args()
    rng = random.Random(0)
    rows = [measure(n, rng) for n in args.sizes]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
