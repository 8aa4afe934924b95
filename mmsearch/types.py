"""Typed records passed between pipeline stages (discover → decode → transcribe → embed → store → search)."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np


class MediaKind(str, Enum):
    VIDEO = "video"
    AUDIO = "audio"
    IMAGE = "image"


class SegmentKind(str, Enum):
    """What a segment stands for. `frame` and `image` live in the visual half of CLIP space, `speech` in the text half;
    `ocr` (text seen on screen), `audio` (a window of the soundtrack) and `face` (a face track) have vectors only in
    their own spaces."""

    FRAME = "frame"
    SPEECH = "speech"
    IMAGE = "image"
    OCR = "ocr"
    AUDIO = "audio"
    SUBTITLE = "subtitle"  # a cue of a subtitle file or stream (ingest/subtitles.py): words with their times
    FACE = "face"  # a face followed through a shot (or a face of a still image); its vector is in the `face` space


# The kinds that carry a CLIP vector in the main vector store (its ids are exactly these segments' ids).
CLIP_KINDS: frozenset[SegmentKind] = frozenset({SegmentKind.FRAME, SegmentKind.SPEECH, SegmentKind.IMAGE})

# --modality names mapped to the segment kinds they cover, and to the kinds of file they look in (None: any file).
# `video` is "in videos": frames, speech, on-screen text and sounds of video files; `audio` is what is heard (speech
# and sound windows), in audio files and in soundtracks; `image` is still images. `--kind` filters segment kinds.
MODALITY_KINDS: dict[str, frozenset[SegmentKind]] = {
    "video": frozenset(SegmentKind),
    "audio": frozenset({SegmentKind.SPEECH, SegmentKind.AUDIO, SegmentKind.SUBTITLE}),
    "image": frozenset(SegmentKind),
    "any": frozenset(SegmentKind),
}
MODALITY_MEDIA: dict[str, frozenset[MediaKind] | None] = {
    "video": frozenset({MediaKind.VIDEO}),
    "audio": None,
    "image": frozenset({MediaKind.IMAGE}),
    "any": None,
}


@dataclass(frozen=True)
class MediaFile:
    """A file found by discover, classified by probing its content."""

    path: Path
    kind: MediaKind
    size: int
    mtime_ns: int
    has_audio: bool = False
    duration: float | None = None
    width: int = 0  # coded frame size, as stored in the stream
    height: int = 0
    # Degrees to turn a decoded frame counter-clockwise to show it upright (phone display matrix): 0/90/180/270.
    rotation: int = 0
    # The container's first presentation time, in seconds: every time of this file lies in [start_time, end].
    start_time: float = 0.0

    @property
    def end(self) -> float | None:
        """Where the file ends on its timeline (times are presentation times, not offsets from 0)."""
        return None if self.duration is None else self.start_time + self.duration

    @property
    def upright_size(self) -> tuple[int, int]:
        """(width, height) as the video is meant to be seen, after rotation."""
        return (self.height, self.width) if self.rotation % 180 == 90 else (self.width, self.height)


@dataclass(frozen=True)
class FrameBatch:
    """Decoded RGB frames (N×H×W×3 uint8) of one file with their presentation times in seconds."""

    file: MediaFile
    frames: np.ndarray
    times: np.ndarray
    # Sampling interval in seconds: a frame stands for [t, t + interval).
    interval: float
    last: bool = False
    # On the last batch: where decoding stopped early (file cut off or corrupt past there), in seconds.
    truncated_at: float | None = None


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 PCM at AUDIO_SAMPLE_RATE."""

    file: MediaFile
    samples: np.ndarray
    sample_rate: int
    # Where this window begins on the container's timeline (long audio comes in windows), in seconds.
    start: float = 0.0
    # (2, n) float32, only when the two channels carry different signals (one voice each): see ingest/audio.py.
    channels: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)


@dataclass(frozen=True)
class SpeechSegment:
    start: float
    end: float
    text: str
    channel: int | None = None  # 0 left, 1 right: transcribed from one channel of a stereo file; None: the mix
    language: str | None = None  # what Whisper heard (ISO 639-1), when the backend says


@dataclass(frozen=True)
class Segment:
    """A unit that gets one vector: a sampled frame, a transcript segment or a still image."""

    kind: SegmentKind
    start: float | None
    end: float | None
    text: str | None = None
    channel: int | None = None  # speech heard in one stereo channel (0 left, 1 right); None: the mix
    language: str | None = None  # speech or subtitle language (ISO 639-1), when known


def spoken_language(segments: list[Segment]) -> str | None:
    """The language most of a file's speech is in (by seconds), None when no speech segment has one."""
    seconds: dict[str, float] = {}
    for s in segments:
        if s.kind is SegmentKind.SPEECH and s.language:
            seconds[s.language] = seconds.get(s.language, 0.0) + max((s.end or 0.0) - (s.start or 0.0), 0.01)
    return max(seconds, key=lambda k: seconds[k]) if seconds else None


@dataclass(frozen=True)
class SpaceVectors:
    """One extra space's vectors for some of a file's segments: `rows[i]` is the position, in the file's segment
    list, of the segment that `vectors[i]` stands for."""

    rows: tuple[int, ...]
    vectors: np.ndarray


@dataclass(frozen=True)
class SegmentHit:
    """One vector returned by the store, resolved through the catalog."""

    segment_id: int
    path: str
    kind: SegmentKind
    start: float | None
    end: float | None
    score: float
    text: str | None = None
    file_id: int | None = None  # the catalog id of the hit's file (None only for hits made up outside an index)
    channel: int | None = None  # speech heard in one stereo channel (0 left, 1 right); None: the mix or unknown


@dataclass(frozen=True)
class EvidencePiece:
    """One unit a moment merged, with its own time: what `evidence` lists in JSON, the CLI and the page."""

    kind: SegmentKind
    start: float | None
    end: float | None
    text: str | None
    channel: int | None
    score: float

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "channel": self.channel,
            "score": round(self.score, 6),
        }


@dataclass(frozen=True)
class ChannelScore:
    """Where one channel ranked a result (1 = best) and the channel's own score for it (before fusion)."""

    rank: int
    score: float
    # Calibrated fusion only: how far the raw score stands above the channel's background (see search/calibration.py).
    evidence: float | None = None

    def to_json(self) -> dict[str, float | int]:
        data: dict[str, float | int] = {"rank": self.rank, "score": finite(self.score)}
        if self.evidence is not None:
            data["evidence"] = round(self.evidence, 4)
        return data


def finite(score: float) -> float:
    """A score as JSON may carry it: NaN and infinities cannot be written as JSON numbers (the bounds on weights in
    search/limits.py keep fused scores finite; this is the last guard at every edge that prints one)."""
    if math.isnan(score):
        return 0.0
    return max(-sys.float_info.max, min(sys.float_info.max, score))


@dataclass(frozen=True)
class Moment:
    """Hits of one file merged where they touch in time; what the user sees as one result."""

    path: str
    kind: SegmentKind
    start: float | None
    end: float | None
    score: float
    text: str | None
    hits: tuple[SegmentHit, ...] = field(default=(), repr=False)
    # Filled by fusion: the channels that found this moment's best unit (see `--explain`).
    channels: dict[str, ChannelScore] = field(default_factory=dict, repr=False, compare=False)
    # A temporal query's result (`--then`): the moment each part matched, in query order.
    parts: tuple[Moment, ...] = field(default=(), repr=False, compare=False)
    file_id: int | None = None  # the catalog id of the file (None only for moments made up outside an index)

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "path": self.path,
            "file_id": self.file_id,
            "kind": self.kind.value,
            "start": self.start,
            "end": self.end,
            "score": finite(self.score),
            "text": self.text,
        }
        pieces = self.evidence
        if pieces:
            data["evidence"] = [p.to_json() for p in pieces]
        if self.parts:
            data["parts"] = [p.to_json() for p in self.parts]
        return data

    @property
    def evidence(self) -> list[EvidencePiece]:
        """Each unit with words this moment merged (speech, subtitles, on-screen text: every piece keeps its own
        time and text), best first; a moment of frames only lists its best frame."""
        worded = [h for h in self.hits if h.text]
        chosen = worded or sorted(self.hits, key=lambda h: -h.score)[:1]
        seen: set[tuple[SegmentKind, float | None, str | None]] = set()
        out: list[EvidencePiece] = []
        for h in sorted(chosen, key=lambda h: -h.score):
            if (h.kind, h.start, h.text) not in seen:
                seen.add((h.kind, h.start, h.text))
                out.append(EvidencePiece(h.kind, h.start, h.end, h.text, h.channel, h.score))
        return out


@dataclass(frozen=True)
class FileFailure:
    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass
class StageTimes:
    """Seconds spent in each ingest stage; the runner fills it and the benchmark reads it."""

    load: float = 0.0  # loading models (only when there is new work)
    discover: float = 0.0
    decode: float = 0.0
    shots: float = 0.0  # shot boundary detection (producer thread, beside decode)
    transcribe: float = 0.0
    embed: float = 0.0
    ocr: float = 0.0  # text on screen (consumer thread, on the sampled frames)
    text: float = 0.0  # sentence embeddings of transcripts and OCR text
    audio: float = 0.0  # audio windows and their CLAP embeddings
    faces: float = 0.0  # face detection, descriptors and tracks (consumer thread, on the sampled frames and images)
    store: float = 0.0
    total: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


@dataclass
class IngestSummary:
    index: str
    files: int = 0
    segments: int = 0
    embedded: int = 0
    new_files: int = 0
    unchanged_files: int = 0
    removed_files: int = 0
    media_seconds: float = 0.0
    failed: list[FileFailure] = field(default_factory=list)
    times: StageTimes = field(default_factory=StageTimes)
    device: str | None = None  # where this run embedded (cuda, mps, cpu); None when nothing was embedded
    decoder: str | None = None  # which frame decoder this run used (decord, pyav)

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "files": self.files,
            "segments": self.segments,
            "embedded": self.embedded,
            "new_files": self.new_files,
            "unchanged_files": self.unchanged_files,
            "removed_files": self.removed_files,
            "media_seconds": round(self.media_seconds, 3),
            "failed": [f.to_json() for f in self.failed],
            "times": self.times.to_json(),
            "device": self.device,
            "decoder": self.decoder,
        }
