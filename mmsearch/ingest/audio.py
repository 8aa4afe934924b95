"""Audio decode stage (PyAV): the first audio stream as 16 kHz float32 windows on the container's timeline.

Every time mmsearch reports is a presentation time of the container, in seconds: what PyAV's `frame.time` and
ffprobe's `start_time` say, and where a browser's `<video>.currentTime` stands (Chromium keeps an mp4's,
mkv's and webm's non-zero first timestamp; measured with `-output_ts_offset 1.4`). Audio that starts later than
its video (`-itsoffset`, an edit list, a broadcast capture) is placed at its own first timestamp, and a gap in
its timestamps is kept as silence, so a word is reported when it is heard, not when its samples happen to
come in the decoded stream.

A stereo window whose two channels carry different signals (one speaker per channel: interviews, phone
recordings) also keeps each channel (`AudioClip.channels`), so each voice can be transcribed on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import MediaError
from ..types import AudioClip, MediaFile, MediaKind
from .streams import decode_until_error, decoder_reason

# Whisper models are trained on 16 kHz mono audio.
AUDIO_SAMPLE_RATE = 16_000
# Long audio reaches Whisper in windows of about this length, cut at the quietest moment of the window's last
# AUDIO_CUT_SEARCH seconds, so memory stays bounded (~20 MB a window) whatever the file's length.
AUDIO_WINDOW_SECONDS = 300.0
AUDIO_CUT_SEARCH = 10.0
AUDIO_CUT_STEP = 0.1
# A jump in the audio timestamps longer than this is a gap (filled with silence), shorter ones are rounding
# and resampler delay (a few ms). A gap longer than AUDIO_MAX_PAD starts a new window at the new time instead,
# so a stream starting hours into a broadcast capture does not allocate hours of silence.
AUDIO_GAP_SECONDS = 0.05
AUDIO_MAX_PAD = 30.0
# Channels whose Pearson correlation over a window is below this carry different signals (one voice each);
# a stereo mix of one scene (music, a centred voice) correlates far above it (0.6-1.0).
SPLIT_CHANNELS_CORRELATION = 0.5


@dataclass(frozen=True)
class _Piece:
    time: float | None  # presentation time of the first sample, None when the stream has no timestamps
    samples: np.ndarray  # (channels, n) float32


def iter_audio(media: MediaFile, window_seconds: float = AUDIO_WINDOW_SECONDS) -> Iterator[AudioClip]:
    """The first audio stream as 16 kHz windows, each with its start time on the container's timeline."""
    limit = int(window_seconds * AUDIO_SAMPLE_RATE)
    window = _Window()
    for piece in _pieces(media):
        if window.starts_new(piece):
            yield from window.flush(media, window_seconds, final=True)
            window = _Window()
        window.add(piece)
        while window.held >= limit:
            yield from window.flush(media, window_seconds)
    yield from window.flush(media, window_seconds, final=True, always=window.first)


class _Window:
    """Samples waiting to become a clip, placed at `start` on the timeline."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.pending: list[np.ndarray] = []
        self.held = 0
        self.first = True  # nothing yielded yet: an empty stream still yields one (empty) clip

    def starts_new(self, piece: _Piece) -> bool:
        if self.start is None or piece.time is None or not self.held:
            return False
        return piece.time - self._position() > AUDIO_MAX_PAD

    def _position(self) -> float:
        return (self.start or 0.0) + self.held / AUDIO_SAMPLE_RATE

    def add(self, piece: _Piece) -> None:
        if self.start is None:
            self.start = max(0.0, piece.time or 0.0)
            if piece.time is not None and piece.time < 0:  # samples before the timeline's zero are never shown
                piece = _Piece(0.0, piece.samples[:, round(-piece.time * AUDIO_SAMPLE_RATE) :])
        elif piece.time is not None and piece.time - self._position() > AUDIO_GAP_SECONDS:
            gap = round((piece.time - self._position()) * AUDIO_SAMPLE_RATE)
            self._append(np.zeros((piece.samples.shape[0], gap), np.float32))
        self._append(piece.samples)

    def _append(self, samples: np.ndarray) -> None:
        if samples.shape[1]:
            self.pending.append(samples)
            self.held += samples.shape[1]

    def flush(
        self, media: MediaFile, window_seconds: float, final: bool = False, always: bool = False
    ) -> Iterator[AudioClip]:
        if not self.held and not always:
            return
        buffer = np.concatenate(self.pending, axis=1) if self.pending else np.zeros((1, 0), np.float32)
        limit = int(window_seconds * AUDIO_SAMPLE_RATE)
        cut = buffer.shape[1] if final else _quiet_cut(buffer[:, :limit].mean(axis=0), _search(window_seconds))
        yield _clip(media, buffer[:, :cut], self.start or 0.0)
        self.first = False
        self.start = (self.start or 0.0) + cut / AUDIO_SAMPLE_RATE
        rest = buffer[:, cut:]
        self.pending, self.held = ([rest] if rest.shape[1] else []), rest.shape[1]


def _search(window_seconds: float) -> float:
    return min(window_seconds / 2, AUDIO_CUT_SEARCH)


def _clip(media: MediaFile, samples: np.ndarray, start: float) -> AudioClip:
    mono = np.ascontiguousarray(samples.mean(axis=0), dtype=np.float32)
    channels = np.ascontiguousarray(samples, dtype=np.float32) if channels_differ(samples) else None
    return AudioClip(media, mono, AUDIO_SAMPLE_RATE, round(start, 6), channels)


def channels_differ(samples: np.ndarray) -> bool:
    """Whether a (2, n) window's channels carry different signals (correlation below the threshold)."""
    if samples.ndim != 2 or samples.shape[0] != 2 or samples.shape[1] < AUDIO_SAMPLE_RATE // 10:
        return False
    left, right = samples.astype(np.float64)
    left, right = left - left.mean(), right - right.mean()
    norm = float(np.sqrt(np.dot(left, left) * np.dot(right, right)))
    if norm == 0.0:
        return False  # a silent channel: nothing to tell apart
    return float(np.dot(left, right)) / norm < SPLIT_CHANNELS_CORRELATION


def _quiet_cut(samples: np.ndarray, search_seconds: float) -> int:
    """Index of the quietest AUDIO_CUT_STEP within the last `search_seconds` (a pause, not mid-word)."""
    step = int(AUDIO_CUT_STEP * AUDIO_SAMPLE_RATE)
    lo = max(0, len(samples) - int(search_seconds * AUDIO_SAMPLE_RATE))
    tail = samples[lo : lo + (len(samples) - lo) // step * step]
    if len(tail) < step:
        return len(samples)
    energy = np.square(tail.reshape(-1, step), dtype=np.float64).mean(axis=1)
    return lo + int(np.argmin(energy)) * step + step // 2


def _pieces(media: MediaFile) -> Iterator[_Piece]:
    """Decoded audio resampled to 16 kHz (mono, or stereo for a stereo stream), with presentation times."""
    import av

    try:
        container = av.open(str(media.path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"cannot decode audio: {decoder_reason(e)}") from e
    with container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        stereo = (stream.codec_context.channels or 1) == 2
        resampler = av.AudioResampler(format="fltp", layout="stereo" if stereo else "mono", rate=AUDIO_SAMPLE_RATE)
        # A cut-off file keeps the audio before the cut (its error ends the stream, not the file).
        for frame in decode_until_error(container, stream):
            time = float(frame.time) if frame.time is not None else None
            for out in resampler.resample(frame):
                yield _Piece(time, out.to_ndarray().astype(np.float32, copy=False))
                time = None  # a second output of one input continues the first
        for out in resampler.resample(None):
            yield _Piece(None, out.to_ndarray().astype(np.float32, copy=False))


def load_audio(media: MediaFile) -> AudioClip | None:
    """The whole first audio stream in one clip (short files, tools); ingest streams it with `iter_audio`.
    Pieces more than AUDIO_MAX_PAD apart are joined with that much silence between them."""
    if not media.has_audio and media.kind is not MediaKind.AUDIO:
        return None
    clips = list(iter_audio(media, window_seconds=WHOLE_FILE_SECONDS))
    if len(clips) == 1:
        return clips[0]
    parts: list[np.ndarray] = []
    for clip, after in zip(clips, [*clips[1:], None], strict=True):
        parts.append(
            np.broadcast_to(_channels(clip), (2, len(clip.samples))) if clip.channels is None else clip.channels
        )
        if after is not None:
            gap = round(min(after.start - clip.start - clip.duration, AUDIO_MAX_PAD) * AUDIO_SAMPLE_RATE)
            parts.append(np.zeros((2, max(gap, 0)), np.float32))
    return _clip(media, np.concatenate(parts, axis=1), clips[0].start)


# load_audio's window: longer than any file (a day).
WHOLE_FILE_SECONDS = 86_400.0


def _channels(clip: AudioClip) -> np.ndarray:
    return clip.channels if clip.channels is not None else clip.samples[None, :]
