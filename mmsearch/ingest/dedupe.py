"""Frame dedupe (embed stage): inside a shot, a sampled frame that looks like the last embedded one is not embedded.

Its time is covered instead by the kept frame's segment, whose end is extended over it, so every sampled time is
still covered by exactly one frame segment and an exact-frame query still lands on the right shot and time. A
static 60 s shot then costs one embedding, not 60.

"Looks like" compares THUMB×THUMB thumbnails (block means of each colour channel) of the frame and of the last
*kept* frame, not of the previous sampled one, so a slow pan or fade cannot creep past the threshold one small
step at a time.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..types import FrameBatch, Segment

# Thumbnail side: a 640×360 frame becomes 16×16 cells of 40×22 pixels; their means are immune to codec noise
# but a 10×10-pixel object appearing in one cell moves its mean by ~0.1 (full contrast).
THUMB = 16
# Largest change of one cell's mean (0..1 of full scale) still counted as "the same picture": lavfi solid colours
# through H.264 stay below 0.01; a cut, a moving pattern or a new caption exceeds 0.05.
MAX_CELL_CHANGE = 0.04


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """THUMB×THUMB×3 block means in 0..1 (frames smaller than THUMB pixels are compared whole)."""
    h, w = frame.shape[:2]
    if h < THUMB or w < THUMB:
        return frame.astype(np.float32).mean(axis=(0, 1), keepdims=True) / 255.0
    bh, bw = h // THUMB, w // THUMB
    cells = frame[: bh * THUMB, : bw * THUMB].reshape(THUMB, bh, THUMB, bw, -1)
    return cells.mean(axis=(1, 3), dtype=np.float32) / 255.0


def changed(a: np.ndarray, b: np.ndarray, threshold: float = MAX_CELL_CHANGE) -> bool:
    return a.shape != b.shape or float(np.abs(a - b).max()) > threshold


@dataclass
class _Kept:
    """The last kept frame of a file, held back until its segment's end is known."""

    segment: Segment
    frame: np.ndarray
    thumb: np.ndarray
    shot: int


class FrameDeduper:
    """One video: its sampled frames in time order -> the frames to embed, each with the segment it covers."""

    def __init__(self, shots: Sequence[tuple[float, float]], threshold: float = MAX_CELL_CHANGE) -> None:
        self._starts = [start for start, _ in sorted(shots)]
        self._threshold = threshold
        self._kept: _Kept | None = None

    def _shot_of(self, t: float) -> int:
        # Times before the first shot (or with no shots detected) all count as one shot, index -1.
        return bisect.bisect_right(self._starts, t) - 1

    def keep(
        self, segments: Sequence[Segment], frames: Sequence[np.ndarray], last: bool
    ) -> tuple[list[Segment], list[np.ndarray]]:
        """Segments and frames to embed now. The newest kept frame is held back (its end may still grow) and
        comes out with a later call, at the latest the one with `last` set."""
        out_segments: list[Segment] = []
        out_frames: list[np.ndarray] = []
        for segment, frame in zip(segments, frames, strict=True):
            thumb = thumbnail(frame)
            shot = self._shot_of(segment.start or 0.0)
            held = self._kept
            if held is not None and held.shot == shot and not changed(thumb, held.thumb, self._threshold):
                held.segment = replace(held.segment, end=max(held.segment.end or 0.0, segment.end or 0.0))
                continue
            if held is not None:
                out_segments.append(held.segment)
                out_frames.append(held.frame)
            self._kept = _Kept(segment, frame, thumb, shot)
        if last and self._kept is not None:
            out_segments.append(self._kept.segment)
            out_frames.append(self._kept.frame)
            self._kept = None
        return out_segments, out_frames


class Dedupe:
    """FrameDedupers of the videos being ingested, by path; the runner's one call per frame batch."""

    def __init__(self) -> None:
        self._files: dict[Path, FrameDeduper] = {}
        self.sampled = 0
        self.embedded = 0

    def keep(
        self, batch: FrameBatch, segments: Sequence[Segment], shots: Sequence[tuple[float, float]]
    ) -> tuple[list[Segment], list[np.ndarray]]:
        deduper = self._files.setdefault(batch.file.path, FrameDeduper(shots))
        kept = deduper.keep(segments, list(batch.frames), batch.last)
        if batch.last:
            del self._files[batch.file.path]
        self.sampled += len(segments)
        self.embedded += len(kept[1])
        return kept
