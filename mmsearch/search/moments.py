"""Hits and fused units into moments.

- `group_units` (what a query returns): fused units taken best first; a unit that overlaps or touches a moment
  already taken from the same file joins it (the moment's span grows, its score stays its best unit's), so the
  top k are k different moments. The walk ends once k moments are taken: units ranked below the k-th moment
  never extend one, which would otherwise chain through a whole video (a deep list holds most of its shots).
- `merge_hits` / `grow_runs` (frame hits into visual units): merging every touching hit would swallow whole
  videos (a deep search returns most frames of a short file), so a run grows from its best hit over touching
  neighbours whose score stays near that peak: within GROW_FRACTION of the distance between the peak and the
  file's weakest hit, and at least within MIN_MARGIN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..types import ChannelScore, Moment, SegmentHit, SegmentKind

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
        file_id=best.file_id,
    )


Unit = tuple[SegmentHit, Mapping[str, ChannelScore]]


def group_units(units: Sequence[Unit], limit: int | None = None) -> list[Moment]:
    """Units (hit carrying its fused score, channels) best first -> at most `limit` moments, best first."""
    groups: list[list[Unit]] = []
    for unit in units:
        if limit is not None and len(groups) >= limit:
            break
        joined = [g for g in groups if _joins(g, unit[0])]
        if joined:
            first = joined[0]
            first.append(unit)
            for other in joined[1:]:  # the unit bridged two moments: they become one
                first.extend(other)
                groups.remove(other)
        else:
            groups.append([unit])
    return [_grouped(g) for g in groups]


def _joins(group: Sequence[Unit], hit: SegmentHit, gap: float = TOUCH_GAP) -> bool:
    """Same file, both timed, and the spans overlap or lie within `gap` seconds of each other."""
    head = group[0][0]
    if hit.path != head.path or hit.start is None or head.start is None:
        return False
    start = min(h.start for h, _ in group if h.start is not None)
    end = max(_end(h) for h, _ in group)
    return hit.start <= end + gap and _end(hit) >= start - gap


def _end(hit: SegmentHit) -> float:
    return hit.end if hit.end is not None else (hit.start or 0.0)


def _grouped(group: Sequence[Unit]) -> Moment:
    best, channels = group[0]
    hits = sorted((h for h, _ in group), key=lambda h: (h.start or 0.0, _end(h)))
    said = [h.text for h in hits if h.kind is SegmentKind.SPEECH and h.text]
    timed = best.start is not None
    return Moment(
        path=best.path,
        kind=best.kind,
        start=min(h.start for h in hits if h.start is not None) if timed else None,
        end=max(_end(h) for h in hits) if timed else best.end,
        score=best.score,
        # The best unit's own words when it has some (on-screen text stays on-screen text); the speech around a
        # frame otherwise. Every piece with its own time is in `Moment.evidence`.
        text=best.text if best.text and best.kind is not SegmentKind.SPEECH else " ".join(dict.fromkeys(said)) or None,
        hits=tuple(hits),
        channels=dict(channels),
        file_id=best.file_id,
    )
