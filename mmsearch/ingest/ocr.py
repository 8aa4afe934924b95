"""OCR stage: text on screen (captions, slides, signs) read where it is, from the frames the visual channel samples.

Per sampled frame of one file, in time order:
1. a frame unchanged since the last one looked at (a coarse grid of thumbnail blocks, so a caption appearing in
   one corner counts as a change) keeps every line on screen; nothing runs;
2. a changed frame goes through the text *detector* only, on a copy downscaled to DET_SIDE pixels at most;
3. each detected box is matched to a line already on screen (same place: box overlap >= MATCH_IOU); a matched
   line whose pixels did not change (a small signature of its crop) is still the same text and is not read again;
4. only new boxes and changed ones are *recognised*, all of the frame's crops in one batch, at full resolution;
5. a line re-read to the same text (within SAME_TEXT) gains a vote; to another text, the old line ends and a new
   one starts in its place. A box whose text changes at every read (a clock, a frame counter) is read VOLATILE
   times and then kept as one line, not one segment per value.
A line that leaves the screen ends there, so each line becomes one segment spanning the time it was shown, with
its most-voted reading. The engine is RapidOCR (PP-OCR detection + recognition ONNX models shipped inside the
`rapidocr` wheel); a still image is read the same way as a one-frame video (`read_image`).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
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
# Two reads of one caption may differ by a letter or two; they stay one line above this similarity.
SAME_TEXT = 0.8
# The detector runs on frames scaled down to this longest side (PP-OCR's detector finds 16 px captions of a
# 640x360 frame; a 1920x1080 frame costs it 9x more for the same boxes). Recognition reads full-resolution crops.
DET_SIDE = 640
# A detected box is the same line as one on screen when their boxes overlap this much (intersection over union).
MATCH_IOU = 0.5
# A line's crop signature (SIG_W x SIG_H blocks of mean grey) changed when it moved by more than SIG_LEVEL on
# average: a different text in the same box moves it by 30+, compression noise by 1-3.
SIG_W, SIG_H = 32, 8
SIG_LEVEL = 8.0
# After this many reads of one box that each gave a new text, the box is a counter or a clock: it stays one line.
VOLATILE = 3
# After this many reads agreeing on its text, a line detected again in the very same box (overlap >= SETTLED_IOU:
# another text would not fill the same box) is not read again although the pixels behind it move.
SETTLED = 3
SETTLED_IOU = 0.85


# RapidOCR settings: quiet (it logs every model file it opens, and a warning for every frame without text); no
# text-angle classifier (captions are upright; it is a third model per line); detection at the (downscaled)
# frame's own size (its default scales the short side *up* to 736 px: 4x the pixels of a 640x360 frame for the
# same words, measured 4.6x slower with identical reads on drawtext captions).
RAPIDOCR_PARAMS = {
    "Global.log_level": "critical",
    "Global.use_cls": False,
    "Det.limit_type": "max",
    "Det.limit_side_len": DET_SIDE,
}


@dataclass(frozen=True)
class Box:
    """An axis-aligned text box in frame pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def around(cls, points: Any, scale: float = 1.0) -> Box:
        pts = np.asarray(points, np.float32) * scale
        return cls(float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))

    def iou(self, other: Box) -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        inter = max(w, 0.0) * max(h, 0.0)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    @property
    def area(self) -> float:
        return max(self.x1 - self.x0, 0.0) * max(self.y1 - self.y0, 0.0)

    def crop(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        x0, y0 = int(np.clip(np.floor(self.x0), 0, w - 1)), int(np.clip(np.floor(self.y0), 0, h - 1))
        x1, y1 = int(np.clip(np.ceil(self.x1), x0 + 1, w)), int(np.clip(np.ceil(self.y1), y0 + 1, h))
        return frame[y0:y1, x0:x1]


@dataclass(frozen=True)
class Reading:
    text: str
    score: float

    @property
    def valid(self) -> bool:
        return self.score >= MIN_SCORE and len(self.text) >= MIN_CHARS and bool(_key(self.text))


@dataclass(frozen=True)
class OcrLine:
    start: float
    end: float
    text: str


class OcrEngine(Protocol):
    def detect(self, frame: np.ndarray) -> list[Box]: ...

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]: ...


class RapidOcrEngine:
    """RapidOCR 3.x on onnxruntime: detection on a downscaled frame, batched recognition of crops."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    @classmethod
    def load(cls, device: str = "cpu") -> RapidOcrEngine:
        """On a CUDA device (`device` cuda, or auto with a CUDA driver) onnxruntime's CUDA provider runs both models
        when the installed onnxruntime has it (onnxruntime-gpu); otherwise the CPU."""
        try:
            from rapidocr import RapidOCR
        except ImportError as e:
            raise WeightsUnavailable("OCR needs the rapidocr package", hint="pip install rapidocr onnxruntime") from e
        params: dict[str, Any] = dict(RAPIDOCR_PARAMS)
        if _wants_cuda(device) and _ort_has_cuda():
            params |= {"EngineConfig.onnxruntime.use_cuda": True}
        try:
            return cls(RapidOCR(params=params))
        except Exception as e:  # its model files missing or unloadable: any of several error types of its own
            raise WeightsUnavailable(f"RapidOCR cannot load its models: {str(e).splitlines()[0][:200]}") from e

    def detect(self, frame: np.ndarray) -> list[Box]:
        import cv2

        scale = min(1.0, DET_SIDE / max(frame.shape[:2]))
        small = frame if scale == 1.0 else cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        # RapidOCR expects OpenCV's BGR order.
        out = self._engine(np.ascontiguousarray(small[:, :, ::-1]), use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(out, "boxes", None)
        return [] if boxes is None else [Box.around(b, 1.0 / scale) for b in boxes]

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        if not crops:
            return []
        out = self._engine.recognize_txt([np.ascontiguousarray(c[:, :, ::-1]) for c in crops])
        return [Reading(str(t).strip(), float(s)) for t, s in zip(out.txts, out.scores, strict=True)]


def _wants_cuda(device: str) -> bool:
    from ..models.hub import cuda_driver_present

    return device in ("cuda", "gpu") or (device == "auto" and cuda_driver_present())


def _ort_has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """GRID x GRID block means of the grey image: cheap, and blind to compression noise."""
    grey = frame.astype(np.float32).mean(axis=2)
    h, w = grey.shape
    rows, cols = max(h // GRID, 1), max(w // GRID, 1)
    cropped = grey[: rows * GRID, : cols * GRID]
    return cropped.reshape(GRID, rows, GRID, cols).mean(axis=(1, 3)) if h >= GRID and w >= GRID else grey


def changed(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is None or a.shape != b.shape or float(np.abs(a - b).max()) > CHANGE_LEVEL


def signature(crop: np.ndarray) -> np.ndarray:
    """SIG_H x SIG_W block means of a crop's grey levels (any crop size)."""
    grey = crop.astype(np.float32).mean(axis=2) if crop.ndim == 3 else crop.astype(np.float32)
    rows = np.array_split(np.arange(grey.shape[0]), min(SIG_H, grey.shape[0]))
    cols = np.array_split(np.arange(grey.shape[1]), min(SIG_W, grey.shape[1]))
    return np.array([[grey[np.ix_(r, c)].mean() for c in cols] for r in rows], np.float32)


def same_pixels(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a - b).mean()) <= SIG_LEVEL


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def same_text(a: str, b: str) -> bool:
    ka, kb = _key(a), _key(b)
    return ka == kb or difflib.SequenceMatcher(None, ka, kb).ratio() >= SAME_TEXT


@dataclass
class _Track:
    """One line of text on screen: where, since when, until when, what it was read as."""

    box: Box
    start: float
    end: float
    sig: np.ndarray
    readings: list[Reading] = field(default_factory=list)
    changes: int = 0  # reads so far that gave a different text in this box

    def settles(self, box: Box) -> bool:
        """Whether `box`, detected where this line is, needs no reading: a counter, or a line read SETTLED times
        to one text and detected in the very same box."""
        return self.changes >= VOLATILE or (len(self.readings) >= SETTLED and self.box.iou(box) >= SETTLED_IOU)

    def text(self) -> str | None:
        """The most-voted valid reading (ties: the higher total confidence), or None when none is valid."""
        valid = [r for r in self.readings if r.valid]
        if not valid:
            return None
        votes = Counter(_key(r.text) for r in valid)
        confidence: dict[str, float] = {}
        for r in valid:
            confidence[_key(r.text)] = confidence.get(_key(r.text), 0.0) + r.score
        best = max(votes, key=lambda k: (votes[k], confidence[k]))
        return max((r for r in valid if _key(r.text) == best), key=lambda r: r.score).text

    def agrees(self, reading: Reading) -> bool:
        text = self.text()
        return text is None or not reading.valid or same_text(text, reading.text)


class OcrTracker:
    """Follows the sampled frames of one file, in time order, and turns the lines seen into timed segments."""

    def __init__(self, engine: OcrEngine) -> None:
        self._engine = engine
        self._thumb: np.ndarray | None = None
        self._open: list[_Track] = []
        self._done: list[_Track] = []
        self.frames_seen = 0
        self.frames_read = 0  # frames the detector ran on
        self.crops_read = 0  # boxes recognised

    def add(self, frame: np.ndarray, t: float, interval: float) -> None:
        self.frames_seen += 1
        thumb = thumbnail(frame)
        if not changed(self._thumb, thumb):
            for track in self._open:
                track.end = t + interval
            return
        self._thumb = thumb
        self.frames_read += 1
        boxes = self._engine.detect(frame)
        pairs = self._match(boxes)
        still: list[_Track] = []
        to_read: list[tuple[Box, _Track | None, np.ndarray]] = []
        for track in self._open:
            box = pairs.get(id(track))
            crop = (box or track.box).crop(frame)
            sig = signature(crop)
            if same_pixels(sig, track.sig) or (box is not None and track.settles(box)):
                track.end = t + interval  # the same pixels, a counter or a settled line: not read again
                still.append(track)
            elif box is not None:
                to_read.append((box, track, crop))
            else:
                self._done.append(track)  # gone from the screen
        matched = set(map(id, pairs.values()))
        to_read += [(box, None, box.crop(frame)) for box in boxes if id(box) not in matched]
        readings = self._engine.recognize([crop for _, _, crop in to_read])
        self.crops_read += len(to_read)
        for (box, previous, crop), reading in zip(to_read, readings, strict=True):
            still += self._update(box, previous, crop, reading, t, interval)
        self._open = still

    def _match(self, boxes: list[Box]) -> dict[int, Box]:
        """Open track id -> the detected box at its place (best overlap first, each box to one track)."""
        candidates = sorted(
            ((track.box.iou(box), n, m) for n, track in enumerate(self._open) for m, box in enumerate(boxes)),
            reverse=True,
        )
        pairs: dict[int, Box] = {}
        used: set[int] = set()
        for iou, n, m in candidates:
            if iou < MATCH_IOU:
                break
            if id(self._open[n]) not in pairs and m not in used:
                pairs[id(self._open[n])] = boxes[m]
                used.add(m)
        return pairs

    def _update(
        self, box: Box, track: _Track | None, crop: np.ndarray, reading: Reading, t: float, interval: float
    ) -> list[_Track]:
        """The open tracks after `box` was read as `reading`: the same line with one more vote, or a new one."""
        if track is not None and track.agrees(reading):
            track.readings.append(reading)
            track.box, track.sig, track.end = box, signature(crop), t + interval
            return [track]
        new = _Track(box, t, t + interval, signature(crop), [reading])
        if track is not None:  # another text in the same place: the old line ends here
            new.changes = track.changes + 1
            self._done.append(track)
        return [new]

    def finish(self, end: float | None = None) -> list[OcrLine]:
        """Every line seen, in order of appearance; a line on screen at the end lasts until `end` (if given)."""
        for track in self._open:
            track.end = min(track.end, end) if end else track.end
        tracks = sorted([*self._done, *self._open], key=lambda tr: (tr.start, tr.box.y0, tr.box.x0))
        self._done, self._open, self._thumb = [], [], None
        lines: list[OcrLine] = []
        for seen in tracks:
            text = seen.text()
            if text is None:
                continue
            # The same text again right where it ended (a box the detector lost for a frame): one line.
            earlier = next((n for n, x in enumerate(lines) if same_text(x.text, text) and x.end >= seen.start), None)
            if earlier is not None:
                lines[earlier] = OcrLine(lines[earlier].start, max(lines[earlier].end, seen.end), lines[earlier].text)
            else:
                lines.append(OcrLine(seen.start, seen.end, text))
        return lines


def read_image(engine: OcrEngine, image: np.ndarray) -> list[str]:
    """The lines of text in a still image, top to bottom."""
    tracker = OcrTracker(engine)
    tracker.add(image, 0.0, 0.0)
    return [line.text for line in tracker.finish()]
