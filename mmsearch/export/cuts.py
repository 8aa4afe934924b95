"""Moments as cuts: each moment's source probed (kind, frame rate, length) and its span snapped to source frames.

A cut is what every export format writes: the source file, the first frame and the number of frames (the
moment plus handles, never past either end of the source), and the moment's own span for the markers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from pathlib import Path

from ..errors import BadInput
from ..types import Moment, SegmentKind

# How long a still image stays on the timeline: the default still duration of Premiere and Resolve.
STILL_SECONDS = 5.0
# Audio files have no frame rate of their own: their cuts are counted in the timeline's frames, and a timeline
# with no video at all counts in 25 fps frames (the EBU rate; an EDL needs some frame rate).
FALLBACK_RATE = Fraction(25)
# The rates SMPTE timecode (and so an EDL, FCP XML, FCPXML) can count in.
SMPTE_RATES = frozenset(Fraction(r) for r in (24, 25, 30, 48, 50, 60)) | frozenset(
    Fraction(r, 1001) for r in (24000, 30000, 60000)
)
# Extensions read as still images whatever the moment says (a thumbnail JPEG has no duration to cut).
STILL_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic"})


class SourceKind(str, Enum):
    VIDEO = "video"  # has pictures that move (and maybe sound)
    AUDIO = "audio"  # sound only
    STILL = "still"  # one picture


@dataclass(frozen=True)
class Source:
    """A media file as an editing program sees it."""

    path: Path  # absolute
    kind: SourceKind
    rate: Fraction  # frames per second (FALLBACK_RATE for audio and stills until the timeline picks its own)
    duration: float | None  # seconds; None for a still
    has_audio: bool = False
    size: tuple[int, int] = (0, 0)  # width, height of the pictures (0, 0 for sound)

    @property
    def frames(self) -> int | None:
        return None if self.duration is None else math.floor(self.duration * self.rate + 1e-6)


@dataclass(frozen=True)
class Cut:
    """One moment on the timeline: frames [first, first + count) of the source at `rate`."""

    source: Source
    rate: Fraction
    first: int
    count: int
    moment_start: float  # the moment itself, without handles, in source seconds (markers)
    moment_end: float
    kind: str  # the segment kind that matched: frame, speech, ocr, audio, image
    text: str | None
    score: float

    @property
    def start(self) -> float:
        return float(self.first / self.rate)

    @property
    def end(self) -> float:
        return float((self.first + self.count) / self.rate)


Prober = Callable[[Path], Source]


def probe_source(path: Path) -> Source:
    """Kind, frame rate and duration of a media file, read with PyAV (FFmpeg's demuxers)."""
    import av

    path = path.resolve()
    if path.suffix.lower() in STILL_SUFFIXES:
        return Source(path, SourceKind.STILL, FALLBACK_RATE, None)
    try:
        with av.open(os.fspath(path)) as container:
            video = [s for s in container.streams.video if not _is_cover_art(s)]
            has_audio = bool(container.streams.audio)
            duration = container.duration / av.time_base if container.duration else None
            rate = Fraction(video[0].average_rate or video[0].guessed_rate or FALLBACK_RATE) if video else None
            size = (video[0].codec_context.width, video[0].codec_context.height) if video else (0, 0)
    except (OSError, av.FFmpegError) as e:
        raise BadInput(f"cannot read {path}: {e}", hint="is the file still where it was indexed?") from e
    if rate is not None:
        return Source(path, SourceKind.VIDEO, rate, duration, has_audio, size)
    if has_audio:
        return Source(path, SourceKind.AUDIO, FALLBACK_RATE, duration, True)
    raise BadInput(f"{path} has neither pictures nor sound")


def _is_cover_art(stream: object) -> bool:
    disposition = getattr(stream, "disposition", None)
    return bool(disposition is not None and "attached_pic" in str(disposition).lower())


def timeline_rate(sources: Iterable[Source]) -> Fraction:
    """The rate an edit counts in: its first video's when that is a SMPTE rate, else FALLBACK_RATE.

    An EDL, an MLT profile and FCP timecodes need one rate, and SMPTE timecode exists only for the SMPTE rates.
    """
    first = next((s.rate for s in sources if s.kind is SourceKind.VIDEO), FALLBACK_RATE)
    return first if first in SMPTE_RATES else FALLBACK_RATE


def plan_cuts(moments: Iterable[Moment], handles: float = 0.0, probe: Prober = probe_source) -> list[Cut]:
    """One cut per moment, in the moments' order; each source probed once."""
    if handles < 0:
        raise BadInput(f"handles must be 0 or more seconds, not {handles}")
    moments = list(moments)
    probed: dict[str, Source] = {}
    for moment in moments:
        if moment.path not in probed:
            probed[moment.path] = probe(Path(moment.path))
    rate = timeline_rate(probed.values())
    return [_cut(m, probed[m.path], rate, handles) for m in moments]


def _cut(moment: Moment, source: Source, rate: Fraction, handles: float) -> Cut:
    if source.kind is not SourceKind.VIDEO:
        source = Source(source.path, source.kind, rate, source.duration, source.has_audio, source.size)
    text, score = moment.text, moment.score
    if source.kind is SourceKind.STILL or moment.start is None or moment.kind is SegmentKind.IMAGE:
        count = round(STILL_SECONDS * source.rate)
        return Cut(source, source.rate, 0, count, 0.0, STILL_SECONDS, moment.kind.value, text, score)
    start = moment.start
    end = moment.end if moment.end is not None and moment.end > start else start + float(1 / source.rate)
    first = max(0, math.floor((start - handles) * source.rate + 1e-6))
    last = math.ceil((end + handles) * source.rate - 1e-6)
    if source.frames is not None:
        last = min(last, source.frames)
    if last <= first:
        raise BadInput(f"{source.path}: {start:.3f}-{end:.3f} s is past the end of the file ({source.duration} s)")
    return Cut(source, source.rate, first, last - first, start, end, moment.kind.value, text, score)
