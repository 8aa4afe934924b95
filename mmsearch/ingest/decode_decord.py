"""Frames with decord (`--decoder decord`): random access to the sampled frames only, where decord has wheels.

The default decoder is PyAV (`decode.py`): one sequential pass that also feeds shot detection, survives cut-off
files and variable frame rates. decord seeks to each sample instead; it refuses a file whose index is cut off
(a truncated download) and, with shot detection on, the shots need a second (PyAV) pass over the video.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import numpy as np

from ..errors import MediaError
from ..types import FrameBatch, MediaFile
from .decode import sample_indices, target_size

log = logging.getLogger(__name__)


def _quiet_decoders() -> None:
    """ffmpeg prints every corrupt packet to stderr; failures reach the user as one line per file instead."""
    import decord

    verbose = log.isEnabledFor(logging.INFO)
    decord.logging.set_level(decord.logging.WARNING if verbose else decord.logging.QUIET)


def _decoder_reason(e: BaseException) -> str:
    """decord errors start with a timestamp and its source file; keep what went wrong."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    text = re.sub(r"^(\[[\d:]+\] )?\S+\.(cc|h):\d+: ", "", text)
    text = text.removeprefix("Error: ")[:200]
    return f"file truncated or corrupt ({text})" if "av_read_frame failed" in text else text


def iter_frames(media: MediaFile, fps: float, batch_size: int = 32) -> Iterator[FrameBatch]:
    """Yield batches of sampled frames. Frames that fail to decode mid-stream are skipped, the rest kept."""
    import decord

    _quiet_decoders()
    try:
        # decord applies the rotation itself: ask for the upright size, or it squeezes the frame into the coded box.
        tw, th = target_size(*media.upright_size) if media.width else (-1, -1)
        reader = decord.VideoReader(str(media.path), ctx=decord.cpu(0), width=tw, height=th)
        n = len(reader)
        # decord counts from the video stream's first timestamp; put its times on the container's timeline.
        times = reader.get_frame_timestamp(np.arange(n))[:, 0].astype(np.float64) + _video_start(media)
    except (decord.DECORDError, RuntimeError, IndexError) as e:
        raise MediaError(f"cannot decode video: {_decoder_reason(e)}") from e
    if n == 0:
        raise MediaError("video has no frames")
    end = float(media.end or (times[-1] + 1.0 / max(reader.get_avg_fps(), 1e-3)))
    idx, sample_times = sample_indices(times, end, fps)
    interval = 1.0 / fps
    for lo in range(0, len(idx), batch_size):
        chunk, chunk_times = idx[lo : lo + batch_size], sample_times[lo : lo + batch_size]
        frames, kept = _get_batch(reader, chunk, chunk_times)
        last = lo + batch_size >= len(idx)
        if len(frames) or last:
            yield FrameBatch(media, frames, kept, interval, last=last)


def _video_start(media: MediaFile) -> float:
    """The first presentation time of the video stream decord reads (the first one that is not cover art)."""
    import av

    try:
        with av.open(str(media.path), metadata_errors="ignore") as container:
            for stream in container.streams.video:
                if not stream.disposition & av.stream.Disposition.attached_pic:
                    start, base = stream.start_time, stream.time_base
                    return float(start * base) if start is not None and base is not None else 0.0
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"cannot decode video: {_decoder_reason(e)}") from e
    return 0.0


def _get_batch(reader: object, idx: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import decord

    try:
        return reader.get_batch(idx).asnumpy(), times  # type: ignore[attr-defined]
    except (decord.DECORDError, RuntimeError) as e:
        log.info("batch decode failed (%s); retrying frame by frame", _decoder_reason(e))
    frames, kept = [], []
    for i, t in zip(idx, times, strict=True):
        try:
            frames.append(reader[int(i)].asnumpy())  # type: ignore[index]
            kept.append(t)
        except (decord.DECORDError, RuntimeError):
            continue
    if not frames:
        return np.zeros((0, 1, 1, 3), np.uint8), np.zeros(0)
    return np.stack(frames), np.asarray(kept)
