"""Faces stage: faces found on the sampled frames and on still images, followed through a shot as face tracks.

Detection is dlib's HOG detector (an 80 px window) on the frame scaled by HOG_WINDOW / MIN_FACE, so faces down to
MIN_FACE pixels are found and the detected image never exceeds DETECT_MAX_SIDE; each face is aligned with dlib's
5-point landmarks and described by dlib's ResNet (128-d; two photos of one person lie 0.07-0.45 apart, two people
>= 0.83, dlib's threshold is 0.6). The models are those of the `face-recognition-models` wheel (public domain / CC0).

A frame is looked at only when it changed since the last one looked at (dedupe's thumbnails); an unchanged frame
keeps the faces already on screen. A face continues a track when its box is near the track's last box and looks
like it (grey 16x16 of the box, correlation >= SAME_LOOK); one that moved or changed looks is described again and
stays in the track only when its descriptor is the track's person's. A face missing from MAX_MISSES looked-at
frames in a row, or a cut, ends its track. Descriptors are the costly part (~150 ms each on one core): a track
takes one when it starts, when its face changes looks and when the face grows GROW times, MAX_DESCRIPTORS at most.
"""

from __future__ import annotations

import importlib.util
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..errors import WeightsUnavailable
from .dedupe import changed, thumbnail

log = logging.getLogger(__name__)

# dlib's frontal HOG detector scans an 80x80 window; smaller faces are found only in an enlarged image.
HOG_WINDOW = 80
# Faces narrower than this (pixels of the decoded frame, at most 448 px a side) are too small to recognise well.
MIN_FACE = 40
# Upper bound on the detected image's longer side: a 448 px frame doubled; stills (up to 1024 px) are not enlarged.
DETECT_MAX_SIDE = 896
# Detector scores below this are mostly faces in texture (HOG's own boundary is 0).
MIN_SCORE = 0.0
# Two descriptors of one person: dlib's threshold (0.6 on raw descriptors, whose norm is ~1.39) on the
# L2-normalised descriptors mmsearch stores: 0.6 / 1.39 = 0.43.
SAME_PERSON = 0.43
# Track continuity: the new box's centre within MAX_SHIFT box widths of the last one, its width within a factor 2.
MAX_SHIFT = 1.0
# Correlation of the grey 16x16 face crops above which a face "looks the same" and needs no new descriptor.
SAME_LOOK = 0.6
LOOK_SIDE = 16
# A face grown this much since its track's last descriptor is described again (a closer shot recognises better).
GROW = 1.5
MAX_DESCRIPTORS = 4
# Looked-at frames a face may be missing from (a detector miss, a hand in front) before its track ends.
MAX_MISSES = 1
# A cut between two looked-at frames: their thumbnails differ by this much on average (0..1 of full scale).
CUT_LEVEL = 0.15
# Crops shown for a track: aligned, CROP pixels square, with CROP_PADDING of the face around it.
CROP, CROP_PADDING = 128, 0.4
# dlib's descriptor network takes 150x150 chips aligned with padding 0.25.
CHIP, CHIP_PADDING = 150, 0.25
MODEL_FILES = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")

Box = tuple[int, int, int, int]  # left, top, right, bottom in frame pixels


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float
    shape: Any  # the engine's landmarks, opaque to the tracker

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


class FaceEngine(Protocol):
    name: str
    dim: int

    def detect(self, image: np.ndarray) -> list[Detection]: ...

    def describe(self, image: np.ndarray, face: Detection) -> np.ndarray: ...

    def crop(self, image: np.ndarray, face: Detection) -> np.ndarray: ...


def model_dir() -> Path:
    """Where `face_recognition_models` keeps its .dat files. Found without importing the package: its __init__
    needs pkg_resources, which current environments lack."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable("faces need the face-recognition-models package", hint="pip install 'mmsearch[faces]'")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def faces_installed() -> bool:
    """Whether dlib and the face models are importable (the default of `--faces`); loads nothing."""
    return all(importlib.util.find_spec(name) is not None for name in ("dlib", "face_recognition_models"))


class DlibFaces:
    """dlib's HOG detector, 5-point landmarks and ResNet descriptor."""

    name = "dlib-resnet-v1"
    dim = 128

    def __init__(self, dlib: Any, root: Path) -> None:
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(root / MODEL_FILES[0]))
        self._net = dlib.face_recognition_model_v1(str(root / MODEL_FILES[1]))

    @classmethod
    def load(cls) -> DlibFaces:
        try:
            import dlib
        except ImportError as e:
            raise WeightsUnavailable("faces need dlib", hint="pip install 'mmsearch[faces]'") from e
        root = model_dir()
        missing = [name for name in MODEL_FILES if not (root / name).is_file()]
        if missing:
            raise WeightsUnavailable(f"face model file(s) missing: {', '.join(missing)}")
        return cls(dlib, root)

    def detect(self, image: np.ndarray) -> list[Detection]:
        h, w = image.shape[:2]
        scale = min(HOG_WINDOW / MIN_FACE, DETECT_MAX_SIDE / max(h, w, 1))
        scaled = image
        if abs(scale - 1.0) > 1e-3:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            scaled = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        rects, scores, _ = self._detector.run(np.ascontiguousarray(scaled), 0, MIN_SCORE)
        found = []
        for rect, score in zip(rects, scores, strict=True):
            box = (
                max(0, round(rect.left() / scale)),
                max(0, round(rect.top() / scale)),
                min(w, round(rect.right() / scale)),
                min(h, round(rect.bottom() / scale)),
            )
            if box[2] - box[0] < MIN_FACE or box[3] - box[1] < MIN_FACE // 2:
                continue
            shape = self._shape(image, self._dlib.rectangle(*box))
            found.append(Detection(box, float(score), shape))
        return found

    def describe(self, image: np.ndarray, face: Detection) -> np.ndarray:
        chip = self._dlib.get_face_chip(image, face.shape, size=CHIP, padding=CHIP_PADDING)
        vector = np.asarray(self._net.compute_face_descriptor(chip), dtype=np.float32)
        return normalise(vector)

    def crop(self, image: np.ndarray, face: Detection) -> np.ndarray:
        return np.asarray(self._dlib.get_face_chip(image, face.shape, size=CROP, padding=CROP_PADDING))


def normalise(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def encode_crop(crop: np.ndarray) -> bytes:
    """A track's crop as the JPEG bytes stored in the catalog (~4 KB at 128 px)."""
    out = io.BytesIO()
    Image.fromarray(crop).save(out, format="JPEG", quality=85)
    return out.getvalue()


@dataclass(frozen=True)
class FaceTrack:
    """One face followed through consecutive frames of one shot (or one face of a still image: no times)."""

    start: float | None
    end: float | None
    descriptor: np.ndarray  # mean of its descriptors, L2-normalised
    crop: np.ndarray  # the aligned crop of its largest sighting
    size: int  # that sighting's width in frame pixels
    sightings: int  # looked-at frames it was found on


@dataclass(eq=False)
class _Open:
    start: float
    end: float
    box: Box
    look: np.ndarray
    descriptors: list[np.ndarray]
    described_size: int
    crop: np.ndarray
    size: int
    sightings: int = 1
    misses: int = 0

    @property
    def descriptor(self) -> np.ndarray:
        return normalise(np.mean(self.descriptors, axis=0))

    def close(self) -> FaceTrack:
        return FaceTrack(self.start, self.end, self.descriptor, self.crop, self.size, self.sightings)


def look_of(image: np.ndarray, box: Box) -> np.ndarray:
    """The face's grey LOOK_SIDE x LOOK_SIDE crop, zero mean and unit norm (for correlations)."""
    left, top, right, bottom = box
    patch = Image.fromarray(image[top:bottom, left:right]).convert("L").resize((LOOK_SIDE, LOOK_SIDE))
    grey = np.asarray(patch, dtype=np.float32).ravel()
    grey -= grey.mean()
    return grey / max(float(np.linalg.norm(grey)), 1e-6)


def _near(track: _Open, face: Detection) -> float | None:
    """How far the face's centre is from the track's last box, in box widths; None when it cannot be the same."""
    width = track.box[2] - track.box[0]
    if not 0.5 <= face.width / max(width, 1) <= 2.0:
        return None
    (a, b, c, d), (e, f, g, h) = track.box, face.box
    shift = float(np.hypot((a + c - e - g) / 2, (b + d - f - h) / 2)) / max(width, 1)
    return shift if shift <= MAX_SHIFT else None


@dataclass
class FaceTracker:
    """Follows the sampled frames of one file, in time order, and turns the faces seen into face tracks."""

    engine: FaceEngine
    frames_seen: int = 0
    frames_read: int = 0
    described: int = 0
    _thumb: np.ndarray | None = None
    _open: list[_Open] = field(default_factory=list)
    _done: list[FaceTrack] = field(default_factory=list)

    def add(self, frame: np.ndarray, t: float, interval: float) -> None:
        self.frames_seen += 1
        thumb = thumbnail(frame)
        if self._thumb is not None and not changed(thumb, self._thumb):
            for track in self._open:
                if track.misses == 0:
                    track.end = t + interval
            return
        if self._thumb is None or self._thumb.shape != thumb.shape or _cut(self._thumb, thumb):
            self._close(self._open)
        self._thumb = thumb
        self.frames_read += 1
        faces = self.engine.detect(frame)
        still = self._follow(frame, faces, t, interval)
        for track in self._open:
            if track not in still:
                track.misses += 1
        self._close([track for track in self._open if track.misses > MAX_MISSES])
        self._open = [track for track in self._open if track.misses <= MAX_MISSES]

    def _follow(self, frame: np.ndarray, faces: list[Detection], t: float, interval: float) -> list[_Open]:
        """Each face joins the nearest open track that it can be, or starts one; the tracks that got a face."""
        pairs = sorted(
            (shift, n, m)
            for n, face in enumerate(faces)
            for m, track in enumerate(self._open)
            if (shift := _near(track, face)) is not None
        )
        taken_faces: set[int] = set()
        got: list[_Open] = []
        for _, n, m in pairs:
            track = self._open[m]
            if n in taken_faces or track in got:
                continue
            if self._extend(track, frame, faces[n], t, interval):
                taken_faces.add(n)
                got.append(track)
        for n, face in enumerate(faces):
            if n not in taken_faces:
                look = look_of(frame, face.box)
                desc = self._describe(frame, face)
                crop = self.engine.crop(frame, face)
                opened = _Open(t, t + interval, face.box, look, [desc], face.width, crop, face.width)
                self._open.append(opened)
                got.append(opened)
        return got

    def _extend(self, track: _Open, frame: np.ndarray, face: Detection, t: float, interval: float) -> bool:
        look = look_of(frame, face.box)
        same_look = float(look @ track.look) >= SAME_LOOK
        grown = face.width >= GROW * track.described_size
        if not same_look or (grown and len(track.descriptors) < MAX_DESCRIPTORS):
            desc = self._describe(frame, face)
            if float(np.linalg.norm(desc - track.descriptor)) > SAME_PERSON:
                return False
            if len(track.descriptors) < MAX_DESCRIPTORS:
                track.descriptors.append(desc)
                track.described_size = max(track.described_size, face.width)
        track.box, track.look, track.end, track.misses = face.box, look, t + interval, 0
        track.sightings += 1
        if face.width > track.size:
            track.crop, track.size = self.engine.crop(frame, face), face.width
        return True

    def _describe(self, frame: np.ndarray, face: Detection) -> np.ndarray:
        self.described += 1
        return self.engine.describe(frame, face)

    def _close(self, tracks: list[_Open]) -> None:
        self._done.extend(track.close() for track in tracks)
        self._open = [track for track in self._open if track not in tracks]

    def finish(self, end: float | None = None) -> list[FaceTrack]:
        """Every track, in order of appearance; one still open at the end lasts until `end` (if given)."""
        self._close(list(self._open))
        tracks = [
            FaceTrack(
                tr.start, min(tr.end or 0.0, end) if end else tr.end, tr.descriptor, tr.crop, tr.size, tr.sightings
            )
            for tr in self._done
        ]
        self._done, self._thumb = [], None
        return sorted(tracks, key=lambda tr: (tr.start or 0.0, -tr.size))


def _cut(a: np.ndarray, b: np.ndarray) -> bool:
    return float(np.abs(a - b).mean()) > CUT_LEVEL


def image_faces(engine: FaceEngine, image: np.ndarray) -> list[FaceTrack]:
    """The faces of a still image, largest first, each a track without times."""
    faces = sorted(engine.detect(image), key=lambda f: -f.width)
    return [FaceTrack(None, None, engine.describe(image, f), engine.crop(image, f), f.width, 1) for f in faces]
