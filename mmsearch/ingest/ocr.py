"""OCR stage: text on screen (captions, slides, signs) read from the frames the visual channel samples.

A frame is read only when it changed since the last frame that was read (a coarse grid of thumbnail blocks, so a
caption appearing in one corner counts as a change); an unchanged frame keeps the text already on screen. Each
line of text becomes one segment spanning the frames it stays on screen: a caption shown for 6 s is one segment
of 6 s. The engine is RapidOCR (PP-OCR detection + recognition ONNX models shipped inside the `rapidocr` wheel).
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import WeightsUnavailable

log = logging.getLogger(__name__)

# Recognitions below this confidence are mostly texture read as letters.
MIN_SCORE = 0.6
# Shorter lines ("a", "|") are noise far more often than words.
MIN_CHARS = 2
# Change detection: frames shrunk to GRID x GRID blocks of mean grey; a frame changed when one block moved by more
# than CHANGE_LEVEL grey levels (of 255). A 2-character caption at 320x240 shifts its block by ~20 levels.
GRID = 16
CHANGE_LEVEL = 6.0
# Two reads of one caption may differ by a letter or two; they stay one segment above this similarity.
SAME_TEXT = 0.8


# RapidOCR settings: quiet (it logs every model file it opens, and a warning for every frame without text); no
# text-angle classifier (captions are upright; it is a third model per line); detection at the frame's own size
# at most 960 px (its default scales the short side *up* to 736 px: 4x the pixels of a 640x360 frame for the
# same words, measured 4.6x slower with identical reads on drawtext captions).
RAPIDOCR_PARAMS = {
    "Global.log_level": "critical",
    "Global.use_cls": False,
    "Det.limit_type": "max",
    "Det.limit_side_len": 960,
}


@dataclass(frozen=True)
class OcrLine:
    start: float
    end: float
    text: str


class OcrEngine(Protocol):
    def read(self, frame: np.ndarray) -> list[str]: ...


class RapidOcrEngine:
    """RapidOCR 3.x on onnxruntime; lines of one frame, top to bottom."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    @classmethod
    def load(cls) -> RapidOcrEngine:
        try:
            from rapidocr import RapidOCR
        except ImportError as e:
            raise WeightsUnavailable("OCR needs the rapidocr package", hint="pip install rapidocr onnxruntime") from e
        try:
            return cls(RapidOCR(params=RAPIDOCR_PARAMS))
        except Exception as e:  # its model files missing or unloadable: any of several error types of its own
            raise WeightsUnavailable(f"RapidOCR cannot load its models: {str(e).splitlines()[0][:200]}") from e

    def read(self, frame: np.ndarray) -> list[str]:
        out = self._engine(np.ascontiguousarray(frame[:, :, ::-1]))  # RapidOCR expects OpenCV's BGR order
        if out.txts is None or out.boxes is None:
            return []
        lines = [
            (float(np.asarray(box)[:, 1].mean()), float(np.asarray(box)[:, 0].min()), str(text).strip())
            for text, score, box in zip(out.txts, out.scores, out.boxes, strict=False)
            if score >= MIN_SCORE and len(str(text).strip()) >= MIN_CHARS
        ]
        return [text for _, _, text in sorted(lines)]


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """GRID x GRID block means of the grey image: cheap, and blind to compression noise."""
    grey = frame.astype(np.float32).mean(axis=2)
    h, w = grey.shape
    rows, cols = max(h // GRID, 1), max(w // GRID, 1)
    cropped = grey[: rows * GRID, : cols * GRID]
    return cropped.reshape(GRID, rows, GRID, cols).mean(axis=(1, 3)) if h >= GRID and w >= GRID else grey


def changed(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is None or a.shape != b.shape or float(np.abs(a - b).max()) > CHANGE_LEVEL


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


class OcrTracker:
    """Follows the sampled frames of one file, in time order, and turns the lines seen into timed segments."""

    def __init__(self, engine: OcrEngine) -> None:
        self._engine = engine
        self._thumb: np.ndarray | None = None
        self._open: dict[str, OcrLine] = {}  # key -> line on screen since .start, seen until .end
        self._done: list[OcrLine] = []
        self.frames_read = 0
        self.frames_seen = 0

    def add(self, frame: np.ndarray, t: float, interval: float) -> None:
        self.frames_seen += 1
        thumb = thumbnail(frame)
        if not changed(self._thumb, thumb):
            self._open = {k: OcrLine(line.start, t + interval, line.text) for k, line in self._open.items()}
            return
        self._thumb = thumb
        self.frames_read += 1
        still: dict[str, OcrLine] = {}
        for text in self._engine.read(frame):
            key = _key(text)
            if not key or key in still:
                continue
            match = self._match(key)
            start = self._open.pop(match).start if match is not None else t
            still[key] = OcrLine(start, t + interval, text)
        self._done.extend(self._open.values())
        self._open = still

    def _match(self, key: str) -> str | None:
        if key in self._open:
            return key
        best = max(self._open, key=lambda k: difflib.SequenceMatcher(None, k, key).ratio(), default=None)
        if best is not None and difflib.SequenceMatcher(None, best, key).ratio() >= SAME_TEXT:
            return best
        return None

    def finish(self, end: float | None = None) -> list[OcrLine]:
        """Every line seen, in order of appearance; a line on screen at the end lasts until `end` (if given)."""
        last = [OcrLine(line.start, min(line.end, end) if end else line.end, line.text) for line in self._open.values()]
        lines = sorted([*self._done, *last], key=lambda line: (line.start, line.text))
        self._done, self._open, self._thumb = [], {}, None
        return lines
