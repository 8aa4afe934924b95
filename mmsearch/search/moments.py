"""Merge segment hits into moments: hits of one file that touch in time and score alike become one result.

Merging every touching hit would swallow whole videos (a deep search returns most frames of a short file), so a
moment grows from its best hit over touching neighbours whose score stays near that peak: within
GROW_FRACTION of the distance between the peak and the file's weakest hit, and at least within MIN_MARGIN.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..types import Moment, SegmentHit, SegmentKind

# Hits closer than this (seconds) count as touching: frame samples are 1/fps apart, speech segments abut.
TOUCH_GAP = 0.05
GROW_FRACTION = 0.5
MIN_MARGIN = 0.01


def merge_hits(hits: Sequence[SegmentHit], gap: float = TOUCH_GAP) -> list[Moment]:
    """Group per file, grow moments from the best hits, rank moments by their best hit."""
    by_path: dict[str, list[SegmentHit]] = {}
    for hit in hits:
        by_path.setdefault(hit.path, []).append(hit)
    moments: list[Moment] = []
    for path_hits in by_path.values():
        moments.extend(_moment([h]) for h in path_hits if h.start is None)
        timed = sorted((h for h in path_hits if h.start is not None), key=lambda h: (h.start, h.end))
        moments.extend(_moment(run) for run in grow_runs(timed, gap))
    moments.sort(key=lambda m: (-m.score, m.path, m.start or 0.0))
    return moments


def _touch(a: SegmentHit, b: SegmentHit, gap: float) -> bool:
    """True when b starts no later than `gap` after a ends (a before b in time)."""
    a_end = a.end if a.end is not None else a.start
    return b.start is not None and a_end is not None and b.start <= a_end + gap


def _fits(timed: Sequence[SegmentHit], lo: int, hi: int, gap: float, max_span: float | None) -> bool:
    """Hits lo..hi touch one another and, with a cap, span at most `max_span` seconds."""
    if not all(_touch(a, b, gap) for a, b in zip(timed[lo:hi], timed[lo + 1 : hi + 1], strict=False)):
        return False
    return max_span is None or (timed[hi].end or 0.0) - (timed[lo].start or 0.0) <= max_span + 1e-6


def grow_runs(
    timed: Sequence[SegmentHit], gap: float = TOUCH_GAP, max_span: float | None = None
) -> list[list[SegmentHit]]:
    """Runs of touching hits (sorted by time) grown from the best ones, taking the better neighbour while it
    scores within GROW_FRACTION of the way from the peak to the weakest hit; `max_span` caps a run's length."""
    if not timed:
        return []
    floor = min(h.score for h in timed)
    taken = [False] * len(timed)
    runs = []
    for seed in sorted(range(len(timed)), key=lambda i: -timed[i].score):
        if taken[seed]:
            continue
        cutoff = timed[seed].score - max(MIN_MARGIN, GROW_FRACTION * (timed[seed].score - floor))
        lo = hi = seed
        taken[seed] = True
        while True:
            sides = [i for i in (lo - 1, hi + 1) if 0 <= i < len(timed) and not taken[i] and timed[i].score >= cutoff]
            sides = [i for i in sides if _fits(timed, min(lo, i), max(hi, i), gap, max_span)]
            if not sides:
                break
            pick = max(sides, key=lambda i: timed[i].score)
            taken[pick] = True
            lo, hi = min(lo, pick), max(hi, pick)
        runs.append(list(timed[lo : hi + 1]))
    return runs


def _moment(run: Sequence[SegmentHit]) -> Moment:
    best = max(run, key=lambda h: h.score)
    speech = [h.text for h in sorted(run, key=lambda h: h.start or 0.0) if h.kind is SegmentKind.SPEECH and h.text]
    starts = [h.start for h in run if h.start is not None]
    ends = [h.end for h in run if h.end is not None]
    return Moment(
        path=best.path,
        kind=best.kind,
        start=min(starts) if starts else None,
        end=max(ends) if ends else None,
        score=best.score,
        text=" ".join(dict.fromkeys(speech)) if speech else None,
        hits=tuple(run),
    )
