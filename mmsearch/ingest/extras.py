"""The extra evidence stages of ingest, called from one place in the runner: OCR, sentence text, audio windows.

- `ocr` reads the frames the visual channel samples (see `ocr.py`), in its own thread beside the CLIP stage
  (`ocr_thread.py`), and adds `ocr` segments with their text.
- `text` embeds every transcript and OCR segment with a sentence model into the `text` space.
- `audio` cuts the soundtrack into windows (see `sounds.py`) and embeds them with CLAP into the `audio` space.
- `faces` follows faces through the sampled frames and finds them in still images (see `faces.py`): `face`
  segments (face tracks), their descriptors in the `face` space, and each track's crop for the people tables.

Each stage is optional: one whose model cannot be loaded says so in one warning line and the others go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import MMSearchError
from ..index.facade import Index
from ..models.clap import ClapEmbedder, parse_audio_spec
from ..models.sentence import SentenceEmbedder
from ..types import AudioClip, FrameBatch, MediaFile, MediaKind, Segment, SegmentKind, SpaceVectors, StageTimes
from .faces import DlibFaces, FaceEngine, FaceTrack, FaceTracker, encode_crop, image_faces
from .ocr import OcrEngine, RapidOcrEngine, read_image
from .ocr_thread import OcrThread
from .sounds import windows
from .subtitles import SubtitleTrack, covers, read_subtitles

log = logging.getLogger(__name__)

TEXT_SPACE, AUDIO_SPACE, FACE_SPACE = "text", "audio", "face"
# Segment kinds whose text the sentence model embeds.
TEXT_KINDS = frozenset({SegmentKind.SPEECH, SegmentKind.OCR, SegmentKind.SUBTITLE})
# Audio windows embedded per CLAP call.
AUDIO_BATCH = 16

T = TypeVar("T")


@dataclass(frozen=True)
class ExtrasOptions:
    ocr: bool = False
    text_model: str | None = None  # a sentence-transformers name or path; None: no text space
    audio_model: str | None = None  # a CLAP checkpoint directory or random:clap-tiny; None: no audio space
    faces: bool = False  # face tracks and their descriptors (the `face` space, people)
    device: str = "auto"
    subtitles: bool = True  # read sidecar subtitle files and embedded text subtitle streams

    def validate(self) -> None:
        if self.audio_model is not None:
            parse_audio_spec(self.audio_model)


@dataclass
class Extracted:
    """What the stages add to one file: segments beyond the CLIP ones, and vectors of the extra spaces."""

    segments: list[Segment] = field(default_factory=list)
    spaces: dict[str, SpaceVectors] = field(default_factory=dict)
    # Face tracks: (position in the file's segment list, face width, crop JPEG), for the people tables.
    faces: list[tuple[int, int, bytes]] = field(default_factory=list)


class ExtraStages:
    def __init__(
        self,
        times: StageTimes,
        ocr: OcrEngine | None = None,
        text: SentenceEmbedder | None = None,
        audio: ClapEmbedder | None = None,
        faces: FaceEngine | None = None,
    ) -> None:
        self.times = times
        self.ocr, self.text, self.audio, self.faces = ocr, text, audio, faces
        self._ocr_thread = OcrThread(ocr, times) if ocr is not None else None  # OCR beside CLIP (ocr_thread.py)
        self._ocr_files: set[Path] = set()
        self._image_text: dict[Path, list[str]] = {}
        self._faces: dict[Path, FaceTracker] = {}
        self._stills: dict[Path, list[FaceTrack]] = {}
        self._sounds: dict[Path, tuple[list[Segment], np.ndarray]] = {}
        self.read_subtitles = True
        self._subtitles: dict[Path, list[SubtitleTrack]] = {}

    @classmethod
    def load(cls, options: ExtrasOptions, times: StageTimes) -> ExtraStages:
        t0 = time.perf_counter()
        ocr = _optional("ocr", lambda: RapidOcrEngine.load(options.device)) if options.ocr else None
        text = None
        if options.text_model:
            name = options.text_model
            text = _optional("text", lambda: SentenceEmbedder.load(name, options.device))
        audio = None
        if options.audio_model:
            spec = options.audio_model
            audio = _optional("audio", lambda: ClapEmbedder.load(spec))
        faces = _optional("faces", DlibFaces.load) if options.faces else None
        times.load += time.perf_counter() - t0
        stages = cls(times, ocr, text, audio, faces)
        stages.read_subtitles = options.subtitles
        return stages

    @property
    def spaces(self) -> dict[str, tuple[str, int]]:
        """The spaces these stages fill: name -> (model, dimension), for the manifest."""
        found = {}
        if self.text is not None:
            found[TEXT_SPACE] = (self.text.name, self.text.dim)
        if self.audio is not None:
            found[AUDIO_SPACE] = (self.audio.spec.raw, self.audio.dim)
        if self.faces is not None:
            found[FACE_SPACE] = (self.faces.name, self.faces.dim)
        return found

    @property
    def wants_audio(self) -> bool:
        return self.audio is not None

    def subtitles(self, media: MediaFile) -> list[SubtitleTrack]:
        """The file's subtitle tracks (sidecars, embedded streams), read once when its work starts."""
        if not self.read_subtitles or media.kind is MediaKind.IMAGE:
            return []
        if media.path not in self._subtitles:
            self._subtitles[media.path] = read_subtitles(media.path)
        return self._subtitles[media.path]

    def subtitles_cover(self, media: MediaFile, when: str, language: str | None) -> bool:
        """`--asr auto`: whether the file's subtitles in its spoken language span it, so Whisper is skipped."""
        return when == "auto" and covers(self.subtitles(media), media.duration, language)

    def observe(self, media: MediaFile, frames: FrameBatch | None = None, clip: AudioClip | None = None) -> None:
        """Work on one item of the file as it arrives from decode."""
        if self.faces is not None and frames is not None:
            self._observe_faces(media, self.faces, frames, None)
        if frames is not None and self._ocr_thread is not None and len(frames.times):
            self._ocr_thread.add(media.path, frames.frames, frames.times, frames.interval)
            self._ocr_files.add(media.path)
        if clip is not None and self.audio is not None:
            t0 = time.perf_counter()
            # Long audio arrives in windows of several minutes: place each one's segments at its offset.
            segments, vectors = self._embed_windows(clip)
            segments = [Segment(s.kind, (s.start or 0.0) + clip.start, (s.end or 0.0) + clip.start) for s in segments]
            before = self._sounds.get(media.path)
            if before is not None:
                segments, vectors = before[0] + segments, np.concatenate([before[1], vectors])
            self._sounds[media.path] = (segments, vectors)
            self.times.audio += time.perf_counter() - t0

    def _observe_faces(
        self, media: MediaFile, engine: FaceEngine, frames: FrameBatch | None, image: np.ndarray | None
    ) -> None:
        t0 = time.perf_counter()
        if image is not None:
            self._stills[media.path] = image_faces(engine, image)
        elif frames is not None:
            tracker = self._faces.setdefault(media.path, FaceTracker(engine))
            for frame, t in zip(frames.frames, frames.times, strict=True):
                tracker.add(frame, float(t), frames.interval)
        self.times.faces += time.perf_counter() - t0

    def observe_image(self, media: MediaFile, image: np.ndarray) -> None:
        """A still image: its text is read like one frame's (an invoice is found by its words), its faces found."""
        if self.faces is not None:
            self._observe_faces(media, self.faces, None, image)
        if self.ocr is not None:
            t0 = time.perf_counter()
            self._image_text[media.path] = read_image(self.ocr, image)
            self.times.ocr += time.perf_counter() - t0

    def _embed_windows(self, clip: AudioClip) -> tuple[list[Segment], np.ndarray]:
        assert self.audio is not None
        cut = windows(clip)
        segments = [Segment(SegmentKind.AUDIO, start, end) for start, end, _ in cut]
        parts = [
            self.audio.embed_audio([w for _, _, w in cut[lo : lo + AUDIO_BATCH]], clip.sample_rate)
            for lo in range(0, len(cut), AUDIO_BATCH)
        ]
        return segments, np.concatenate(parts) if parts else np.zeros((0, self.audio.dim), np.float32)

    def finish(self, media: MediaFile, segments: list[Segment]) -> Extracted:
        """The file's extra segments and space vectors; `segments` are its CLIP segments (they come first)."""
        out = Extracted()
        if self._ocr_thread is not None and media.path in self._ocr_files:
            self._ocr_files.discard(media.path)
            lines, tracker = self._ocr_thread.finish(media.path, media.end)
            out.segments += [Segment(SegmentKind.OCR, line.start, line.end, line.text) for line in lines]
            if tracker is not None:
                counts = (tracker.frames_read, tracker.frames_seen, tracker.crops_read)
                log.debug("ocr %s: detected on %d of %d frames, recognised %d boxes", media.path, *counts)
        out.segments += [Segment(SegmentKind.OCR, None, None, text) for text in self._image_text.pop(media.path, [])]
        tracks = self.subtitles(media)
        self._subtitles.pop(media.path, None)
        for track in tracks:
            out.segments += [
                Segment(SegmentKind.SUBTITLE, c.start, c.end, c.text, language=track.language) for c in track.cues
            ]
        self._finish_faces(media, len(segments), out)
        every = [*segments, *out.segments]
        if self.text is not None:
            t0 = time.perf_counter()
            rows = tuple(n for n, s in enumerate(every) if s.kind in TEXT_KINDS and s.text)
            vectors = self.text.embed_texts([every[n].text or "" for n in rows])
            if rows:
                out.spaces[TEXT_SPACE] = SpaceVectors(rows, vectors)
            self.times.text += time.perf_counter() - t0
        sound = self._sounds.pop(media.path, None)
        if sound is not None and sound[0]:
            first = len(every)
            out.segments += sound[0]
            out.spaces[AUDIO_SPACE] = SpaceVectors(tuple(range(first, first + len(sound[0]))), sound[1])
        return out

    def _finish_faces(self, media: MediaFile, first: int, out: Extracted) -> None:
        """The file's face tracks become `face` segments after the CLIP and OCR ones, with their descriptors."""
        tracker = self._faces.pop(media.path, None)
        tracks = self._stills.pop(media.path, None) or (tracker.finish(media.duration) if tracker else [])
        if not tracks:
            return
        t0 = time.perf_counter()
        start = first + len(out.segments)
        rows = tuple(range(start, start + len(tracks)))
        out.segments += [Segment(SegmentKind.FACE, tr.start, tr.end) for tr in tracks]
        out.spaces[FACE_SPACE] = SpaceVectors(rows, np.stack([tr.descriptor for tr in tracks]))
        out.faces += [(row, tr.size, encode_crop(tr.crop)) for row, tr in zip(rows, tracks, strict=True)]
        if tracker is not None:
            log.debug("faces %s: %d track(s), looked at %d of %d frames", media.path, len(tracks), tracker.frames_read,
                      tracker.frames_seen)  # fmt: skip
        self.times.faces += time.perf_counter() - t0

    def drop(self, media: MediaFile) -> None:
        """Forget a file that failed part-way."""
        self._faces.pop(media.path, None)
        self._stills.pop(media.path, None)
        if self._ocr_thread is not None and media.path in self._ocr_files:
            self._ocr_files.discard(media.path)
            self._ocr_thread.drop(media.path)
        self._image_text.pop(media.path, None)
        self._sounds.pop(media.path, None)
        self._subtitles.pop(media.path, None)


def backfill_text(writer: Index, options: ExtrasOptions, times: StageTimes) -> int:
    """Give transcript and OCR segments indexed before the text space existed their sentence vectors.

    An index built before this channel (or with `--text-model none`) gains it on the next run that has a text
    model, without re-indexing its files; the model loads only when there is such a segment.
    """
    if not options.text_model:
        return 0
    missing = writer.texts_without_space(TEXT_SPACE, TEXT_KINDS)
    if not missing:
        return 0
    name = options.text_model
    model = _optional("text", lambda: SentenceEmbedder.load(name, options.device))
    if model is None:
        return 0
    writer.use_space(TEXT_SPACE, model.name, model.dim)
    t0 = time.perf_counter()
    vectors = model.embed_texts([text for _, text in missing])
    writer.add_space_vectors(TEXT_SPACE, [i for i, _ in missing], vectors)
    times.text += time.perf_counter() - t0
    log.info("text space: embedded %d segment(s) indexed before it existed", len(missing))
    return len(missing)


def _optional(channel: str, load: Callable[[], T]) -> T | None:
    """The loaded model, or None after one warning line: a missing model turns its channel off, not the run."""
    try:
        return load()
    except (MMSearchError, ImportError, OSError) as e:
        log.warning("%s channel off: %s", channel, getattr(e, "message", None) or str(e).splitlines()[0])
        return None
