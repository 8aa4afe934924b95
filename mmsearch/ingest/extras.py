"""The extra evidence stages of ingest, called from one place in the runner: OCR, sentence text, audio windows.

- `ocr` reads the frames the visual channel samples (see `ocr.py`), in its own thread beside the CLIP stage
  (`ocr_thread.py`), and adds `ocr` segments with their text.
- `text` embeds every transcript and OCR segment with a sentence model into the `text` space.
- `audio` cuts the soundtrack into windows (see `sounds.py`) and embeds them with CLAP into the `audio` space.

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
from ..types import AudioClip, FrameBatch, MediaFile, Segment, SegmentKind, SpaceVectors, StageTimes
from .ocr import OcrEngine, RapidOcrEngine, read_image
from .ocr_thread import OcrThread
from .sounds import windows

log = logging.getLogger(__name__)

TEXT_SPACE, AUDIO_SPACE = "text", "audio"
# Segment kinds whose text the sentence model embeds.
TEXT_KINDS = frozenset({SegmentKind.SPEECH, SegmentKind.OCR})
# Audio windows embedded per CLAP call.
AUDIO_BATCH = 16

T = TypeVar("T")


@dataclass(frozen=True)
class ExtrasOptions:
    ocr: bool = False
    text_model: str | None = None  # a sentence-transformers name or path; None: no text space
    audio_model: str | None = None  # a CLAP checkpoint directory or random:clap-tiny; None: no audio space
    device: str = "auto"

    def validate(self) -> None:
        if self.audio_model is not None:
            parse_audio_spec(self.audio_model)


@dataclass
class Extracted:
    """What the stages add to one file: segments beyond the CLIP ones, and vectors of the extra spaces."""

    segments: list[Segment] = field(default_factory=list)
    spaces: dict[str, SpaceVectors] = field(default_factory=dict)


class ExtraStages:
    def __init__(
        self,
        times: StageTimes,
        ocr: OcrEngine | None = None,
        text: SentenceEmbedder | None = None,
        audio: ClapEmbedder | None = None,
    ) -> None:
        self.times = times
        self.ocr, self.text, self.audio = ocr, text, audio
        self._ocr_thread = OcrThread(ocr, times) if ocr is not None else None  # OCR beside CLIP (ocr_thread.py)
        self._ocr_files: set[Path] = set()
        self._image_text: dict[Path, list[str]] = {}
        self._sounds: dict[Path, tuple[list[Segment], np.ndarray]] = {}

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
        times.load += time.perf_counter() - t0
        return cls(times, ocr, text, audio)

    @property
    def spaces(self) -> dict[str, tuple[str, int]]:
        """The spaces these stages fill: name -> (model, dimension), for the manifest."""
        found = {}
        if self.text is not None:
            found[TEXT_SPACE] = (self.text.name, self.text.dim)
        if self.audio is not None:
            found[AUDIO_SPACE] = (self.audio.spec.raw, self.audio.dim)
        return found

    @property
    def wants_audio(self) -> bool:
        return self.audio is not None

    def observe(self, media: MediaFile, frames: FrameBatch | None = None, clip: AudioClip | None = None) -> None:
        """Work on one item of the file as it arrives from decode."""
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

    def observe_image(self, media: MediaFile, image: np.ndarray) -> None:
        """A still image: its text is read like one frame's (an invoice is found by its words)."""
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
            lines, tracker = self._ocr_thread.finish(media.path, media.duration)
            out.segments += [Segment(SegmentKind.OCR, line.start, line.end, line.text) for line in lines]
            if tracker is not None:
                counts = (tracker.frames_read, tracker.frames_seen, tracker.crops_read)
                log.debug("ocr %s: detected on %d of %d frames, recognised %d boxes", media.path, *counts)
        out.segments += [Segment(SegmentKind.OCR, None, None, text) for text in self._image_text.pop(media.path, [])]
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

    def drop(self, media: MediaFile) -> None:
        """Forget a file that failed part-way."""
        if self._ocr_thread is not None and media.path in self._ocr_files:
            self._ocr_files.discard(media.path)
            self._ocr_thread.drop(media.path)
        self._image_text.pop(media.path, None)
        self._sounds.pop(media.path, None)


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
