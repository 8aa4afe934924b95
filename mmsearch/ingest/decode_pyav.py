"""Decode stage, PyAV side: the same sampled frames as the decord path in `decode.py`, where decord has no wheels.

One pass over the stream: every frame is decoded (H.264 cannot skip to a frame without its references), only the
sampled ones are converted to RGB. Which frames are sampled follows `decode.sample_indices` exactly, computed as
the frames arrive instead of from an index of the whole file: for sample times 0, 1/fps, 2/fps, ... the first
frame shown at or after each, times measured from the stream's start like decord's `get_frame_timestamp`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import MediaError
from ..types import FrameBatch, MediaFile
from .decode import _target_size

log = logging.getLogger(__name__)

# Same slack as decode.sample_indices: a frame 1 µs before a sample time counts as at it (float timestamps).
TIME_SLACK = 1e-6
# decord scales in an ffmpeg filter graph whose `scale` filter defaults to bicubic; match it so frames agree.
INTERPOLATION = "BICUBIC"


class _Sampler:
    """Streams `decode.sample_indices`: decides per decoded frame whether it is a sample, in presentation order."""

    def __init__(self, fps: float) -> None:
        self.step = 1.0 / fps
        self.next_k = 0  # index of the next sample time not yet served by a frame
        self.last_taken = False

    def wants(self, t: float) -> bool:
        taken = t >= self.next_k * self.step - TIME_SLACK
        # One frame serves every sample time up to it (sample_indices drops the repeats).
        while self.next_k * self.step - TIME_SLACK <= t:
            self.next_k += 1
        self.last_taken = taken
        return taken

    def wants_last(self, end: float) -> bool:
        """Sample times after the last frame but before the end of the video all fall to the last frame."""
        return not self.last_taken and self.next_k * self.step < end


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def _rotation_turns(frame: Any) -> int:
    """Quarter turns counter-clockwise (np.rot90's k) that the display matrix asks for; ffmpeg's autorotate."""
    try:
        degrees = float(frame.rotation or 0)
    except (AttributeError, ValueError):  # no display matrix side data
        return 0
    return round(degrees / 90.0) % 4


class _Converter:
    """Decoded frame -> upright RGB array at decode.py's frame size (longest side capped, even sides)."""

    def __init__(self, media: MediaFile) -> None:
        self.keep_size = not media.width  # decord is asked for the source size (-1) when the probe saw none

    def __call__(self, frame: Any) -> np.ndarray:
        turns = _rotation_turns(frame)
        width, height = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
        if self.keep_size:
            rgb = frame.to_ndarray(format="rgb24")
        else:
            tw, th = _target_size(width, height)
            # Scale in the coded orientation, then turn: the same pixels as turning first, at a quarter of the cost.
            cw, ch = (th, tw) if turns % 2 else (tw, th)
            rgb = frame.reformat(width=cw, height=ch, format="rgb24", interpolation=INTERPOLATION).to_ndarray()
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _frames(container: Any, stream: Any) -> Iterator[tuple[float, Any]]:
    """(seconds from the stream's start, frame) in presentation order; a corrupt packet costs only that packet."""
    import av

    start = stream.start_time or 0
    base = float(stream.time_base) if stream.time_base else 0.0
    last_t = -1.0
    for packet in container.demux(stream):
        try:
            decoded = packet.decode()
        except av.InvalidDataError:
            continue
        for frame in decoded:
            pts = frame.pts if frame.pts is not None else frame.dts
            # No timestamp at all: one frame interval after the previous frame.
            t = last_t + 1.0 / float(stream.average_rate or 25) if pts is None else (pts - start) * base
            last_t = t
            yield t, frame


def iter_frames(media: MediaFile, fps: float, batch_size: int = 32) -> Iterator[FrameBatch]:
    """Yield batches of sampled frames, like `decode.iter_frames`. A file cut short keeps the frames before the cut."""
    import av

    try:
        container = av.open(str(media.path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(f"cannot decode video: {_reason(e)}") from e
    with container:
        if not container.streams.video:
            raise MediaError("cannot decode video: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: several frames decode at once, order is kept
        yield from _sampled_batches(media, container, stream, fps, batch_size)


def _sampled_batches(
    media: MediaFile, container: Any, stream: Any, fps: float, batch_size: int
) -> Iterator[FrameBatch]:
    import av

    sampler, convert = _Sampler(fps), _Converter(media)
    interval = 1.0 / fps
    frames: list[np.ndarray] = []
    times: list[float] = []
    last: tuple[float, Any] | None = None
    seen = 0
    try:
        for t, frame in _frames(container, stream):
            seen += 1
            last = (t, frame)
            if not sampler.wants(t):
                continue
            if len(frames) == batch_size:  # held back until now so that the final batch can say last=True
                yield FrameBatch(media, np.stack(frames), np.asarray(times), interval)
                frames, times = [], []
            frames.append(convert(frame))
            times.append(t)
    except av.FFmpegError as e:  # the demuxer gave up (truncated or damaged container): keep what decoded
        if not seen:
            raise MediaError(f"cannot decode video: file truncated or corrupt ({_reason(e)})") from e
        log.info("%s: decoding stopped after %d frames (%s)", media.path.name, seen, _reason(e))
        cut_short = True
    else:
        # The container's index lists more frames than decoded: the file was cut (a half-copied download).
        cut_short = bool(stream.frames) and seen < stream.frames
    if last is None:
        raise MediaError("video has no frames")
    rate = float(stream.average_rate or 0)  # decord's get_avg_fps(), floored the same way as decode.py
    end = float(media.duration or (last[0] + 1.0 / max(rate, 1e-3)))
    # decord maps the sample times past its last indexed frame to that frame; when the file was cut, that frame
    # is among the lost ones, so the last frame that did decode is not a sample either.
    if not cut_short and sampler.wants_last(max(end, last[0] + TIME_SLACK)):
        if len(frames) == batch_size:
            yield FrameBatch(media, np.stack(frames), np.asarray(times), interval)
            frames, times = [], []
        frames.append(convert(last[1]))
        times.append(last[0])
    stacked = np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)
    yield FrameBatch(media, stacked, np.asarray(times, np.float64), interval, last=True)
