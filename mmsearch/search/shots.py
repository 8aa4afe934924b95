"""Shots at query time: visual hits reported as their shot (boundaries are found at ingest, `ingest/shots.py`).

A frame hit stands for the shot it lies in: start and end at the cuts. In a shot longer than LONG_SHOT_SECONDS
(a static camera on a long interview, a whole lecture) the shot says little about *when*, so the hit becomes a
window around the matching frames instead: the run of touching frame hits grown as in `moments.py`, padded by
WINDOW_PAD_SECONDS on each side and clipped to the shot (at most MAX_WINDOW_SECONDS + 2 pads long).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..types import SegmentHit, SegmentKind
from .moments import TOUCH_GAP, grow_runs, merge_hits

# Longer shots are reported as windows around their matching frames; 10 s is about three times the median
# shot length of edited film and TV, so only long takes (interviews, lectures, surveillance) get windows.
LONG_SHOT_SECONDS = 10.0
# A window is at most MAX_WINDOW_SECONDS of matching frames plus WINDOW_PAD_SECONDS of context each side,
# so it is always shorter than the long shot it lies in.
MAX_WINDOW_SECONDS = 4.0
WINDOW_PAD_SECONDS = 1.0


@dataclass(frozen=True)
class VisualUnit:
    """What the visual channel ranks: a shot, a window inside a long shot, or a still image."""

    file_id: int
    hit: SegmentHit  # the best frame (or image) hit, with start/end widened to the unit


def shot_units(hits: Sequence[tuple[int, SegmentHit]], shots: dict[int, list[tuple[float, float]]]) -> list[VisualUnit]:
    """Group (file_id, hit) frame and image hits into units, best first, scored by their best hit."""
    units: list[VisualUnit] = []
    by_shot: dict[tuple[int, int], list[SegmentHit]] = {}
    loose: dict[int, list[SegmentHit]] = {}
    for file_id, hit in hits:
        if hit.start is None or hit.kind is not SegmentKind.FRAME:
            units.append(VisualUnit(file_id, hit))
            continue
        index = _shot_index(shots.get(file_id, []), hit.start)
        if index is None:
            loose.setdefault(file_id, []).append(hit)  # no shots recorded (index built before detection)
        else:
            by_shot.setdefault((file_id, index), []).append(hit)
    for (file_id, index), shot_hits in by_shot.items():
        units.extend(_units_in_shot(file_id, shots[file_id][index], shot_hits))
    for file_id, frame_hits in loose.items():
        if _apart(frame_hits):  # the common case deep in a big index: frames that touch no other are their own units
            units.extend(VisualUnit(file_id, hit) for hit in frame_hits)
            continue
        units.extend(VisualUnit(file_id, _widen(m.hits, m.start, m.end)) for m in merge_hits(frame_hits))
    units.sort(key=lambda u: (-u.hit.score, u.hit.path, u.hit.start or 0.0))
    return units


def _apart(hits: list[SegmentHit]) -> bool:
    """No two of these timed hits touch: merging them would give each back as its own run, unchanged."""
    if len(hits) == 1:
        return True
    timed = sorted(hits, key=lambda h: (h.start or 0.0, h.end or 0.0))
    return all(
        b.start is not None and b.start > (a.end if a.end is not None else a.start or 0.0) + TOUCH_GAP
        for a, b in zip(timed, timed[1:], strict=False)
    )


def _shot_index(shots: list[tuple[float, float]], t: float) -> int | None:
    for i, (start, end) in enumerate(shots):
        if start - 1e-3 <= t < end:
            return i
    return None


def _units_in_shot(file_id: int, shot: tuple[float, float], hits: list[SegmentHit]) -> list[VisualUnit]:
    start, end = shot
    if end - start <= LONG_SHOT_SECONDS:
        return [VisualUnit(file_id, _widen(hits, start, end))]
    runs = sorted(_windows(sorted(hits, key=lambda h: h.start or 0.0)), key=lambda r: r[0].start or 0.0)
    units = []
    for i, run in enumerate(runs):
        # Padding never reaches into a neighbouring window, so windows of one shot stay disjoint.
        left = runs[i - 1][-1].end if i > 0 else start
        right = runs[i + 1][0].start if i + 1 < len(runs) else end
        lo = max(start, left or start, (run[0].start or start) - WINDOW_PAD_SECONDS)
        hi = min(end, right or end, (run[-1].end or end) + WINDOW_PAD_SECONDS)
        units.append(VisualUnit(file_id, _widen(run, lo, hi)))
    return units


def _windows(timed: list[SegmentHit]) -> list[list[SegmentHit]]:
    """Runs of matching frames inside a long shot, capped so a long take of one view does not come back whole."""
    return grow_runs(timed, TOUCH_GAP, MAX_WINDOW_SECONDS)


def _widen(hits: Sequence[SegmentHit], start: float | None, end: float | None) -> SegmentHit:
    best = max(hits, key=lambda h: h.score)
    return replace(best, start=start, end=end)
