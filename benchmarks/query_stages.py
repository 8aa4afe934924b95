"""Where a warm query's time goes, stage by stage, in the same Searcher that `mmsearch serve` holds.

    python benchmarks/query_stages.py --index DIR --queries 50 [--pyinstrument benchmarks/out/profile.html]

The Searcher is opened as the server opens it (resident segment table); each stage's function is wrapped on
this one Searcher's objects (no product code changes) and timed per query:

  tower          the CLIP text tower (embedder.embed_texts)
  vector_search  the CLIP store's search (visual and speech share one scan)
  bm25           the keyword index's search (tokenize + score)
  text_space     the sentence tower and the text space's search (every extra space, summed)
  segment_table  resolving store ids to hits (kind filter, texts of worded hits) and shots of the frames' files
  calibration    backgrounds (cached per commit: ~0 once warm)
  fusion         fuse()
  moments        to_moments()
  other          the rest of Searcher.search (planning, channel code between the stages)

benchmarks/serve.py and benchmarks/scale.py call `profile_stages` on the index they built.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

STAGES = (
    "tower",
    "vector_search",
    "bm25",
    "text_space",
    "segment_table",
    "calibration",
    "fusion",
    "moments",
    "other",
)


class StageClock:
    """Seconds spent per stage during the current query (re-entrant stages count once, at the outermost call).
    `now`: time.perf_counter (wall) or time.thread_time (CPU of this thread: what the stage costs without the
    waiting that a loaded machine adds; the query runs in one thread, its libraries limited to one thread)."""

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self.now = now
        self.spent: dict[str, float] = defaultdict(float)
        self._depth: dict[str, int] = defaultdict(int)

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth[stage] += 1
            t0 = self.now()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth[stage] -= 1
                if self._depth[stage] == 0:
                    self.spent[stage] += self.now() - t0

        return timed


@contextmanager
def _patched(obj: Any, name: str, stage: str, clock: StageClock) -> Iterator[None]:
    original = getattr(obj, name)
    setattr(obj, name, clock.wrap(stage, original))
    try:
        yield
    finally:
        setattr(obj, name, original)


def instrument(searcher: Any, clock: StageClock) -> list[tuple[Any, str, str]]:
    """(object, attribute, stage) to wrap on one warm Searcher (its lazy parts already loaded)."""
    import mmsearch.search.searcher as searcher_module
    from mmsearch.search.spaces import FlatSpace

    ctx = searcher.context
    targets: list[tuple[Any, str, str]] = [
        (searcher.embedder, "embed_texts", "tower"),
        (ctx.store, "search", "vector_search"),
        (searcher.keyword_index(), "search", "bm25"),
        (searcher.spaces, "embed_query", "text_space"),
        (FlatSpace, "search", "text_space"),
        (ctx.segments(), "hits", "segment_table"),
        (searcher.catalog, "shots_of", "segment_table"),
        (searcher.calibration, "backgrounds", "calibration"),
        (searcher_module, "fuse", "fusion"),
        (searcher_module, "to_moments", "moments"),
    ]
    return targets


def profile_stages(
    index_dir: Path, texts: list[str], warmup: int = 3, pyinstrument_html: Path | None = None, cpu: bool = False
) -> dict:
    """Per-stage p50 / mean ms over `texts` (after `warmup` queries), and the total p50/p95; `cpu`: thread CPU
    time instead of wall time."""
    from contextlib import ExitStack

    from mmsearch.search.searcher import Query, Searcher
    from mmsearch.server.live import limit_threads

    limit_threads(1)  # as the server runs its searches
    searcher = Searcher.open(index_dir, device="cpu")
    try:
        for text in texts[:warmup]:
            searcher.search(Query(text=text))
        now = time.thread_time if cpu else time.perf_counter
        clock = StageClock(now)
        per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
        totals: list[float] = []
        profiler = _profiler(pyinstrument_html)
        with ExitStack() as stack:
            for obj, name, stage in instrument(searcher, clock):
                stack.enter_context(_patched(obj, name, stage, clock))
            if profiler is not None:
                profiler.start()
            for text in texts:
                clock.spent.clear()
                t0 = now()
                searcher.search(Query(text=text))
                total = now() - t0
                totals.append(total)
                for stage in STAGES[:-1]:
                    per_stage[stage].append(clock.spent.get(stage, 0.0))
                per_stage["other"].append(total - sum(clock.spent.values()))
            if profiler is not None:
                profiler.stop()
                out = pyinstrument_html  # .html: the interactive page; anything else: the text tree
                assert out is not None
                page = profiler.output_html() if out.suffix == ".html" else profiler.output_text(show_all=False)
                out.write_text(page)
    finally:
        searcher.close()
    ms = {s: np.asarray(v) * 1000 for s, v in per_stage.items()}
    return {
        "queries": len(texts),
        "clock": "thread CPU" if cpu else "wall",
        "total_p50_ms": round(float(np.percentile(np.asarray(totals) * 1000, 50)), 2),
        "total_p95_ms": round(float(np.percentile(np.asarray(totals) * 1000, 95)), 2),
        "stages_p50_ms": {s: round(float(np.percentile(v, 50)), 2) for s, v in ms.items()},
        "stages_mean_ms": {s: round(float(v.mean()), 2) for s, v in ms.items()},
    }


def _profiler(html: Path | None) -> Any:
    if html is None:
        return None
    from pyinstrument import Profiler

    html.parent.mkdir(parents=True, exist_ok=True)
    return Profiler(interval=0.0005)


def print_stages(row: dict) -> None:
    head = f"  in-process ({row['clock']}) p50 {row['total_p50_ms']} ms, p95 {row['total_p95_ms']} ms"
    print(head + "; per stage (p50 / mean ms):")
    for stage in STAGES:
        print(f"    {stage:14s} {row['stages_p50_ms'][stage]:8.2f} / {row['stages_mean_ms'][stage]:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--pyinstrument", type=Path, default=None, help="write a pyinstrument profile (.html or text)")
    parser.add_argument("--cpu", action="store_true", help="thread CPU time instead of wall time (a loaded machine)")
    args = parser.parse_args()
    from serve import queries  # benchmarks/ is the script's directory

    row = profile_stages(args.index, queries(args.queries), pyinstrument_html=args.pyinstrument, cpu=args.cpu)
    print_stages(row)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
