"""Decode stage: sampled video frames (decord) with their timestamps, 16 kHz mono audio (PyAV), still images."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MediaError
from ..types import AudioClip, FrameBatch, MediaFile

log = logging.getLogger(__name__)

# Whisper models are trained on 16 kHz mono audio.
AUDIO_SAMPLE_RATE = 16_000
# CLIP preprocessing resizes to 224 px anyway; decoding smaller saves memory and resize time.
MAX_FRAME_SIDE = 448
# Pillow refuses "decompression bombs" above ~179 Mpx; we shrink stills to this before embedding.
MAX_IMAGE_SIDE = 1024
# Stills that still need more pixels than this after JPEG draft-mode reduction are refused: 64 Mpx of RGB is
# ~190 MB decoded, and formats like PNG cannot be decoded at a reduced scale.
MAX_DECODE_PIXELS = 64_000_000


def sample_indices(frame_times: np.ndarray, duration: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """For sample times 0, 1/fps, 2/fps, ... pick the first frame shown at or after each; drop repeats."""
    if len(frame_times) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    wanted = np.arange(0.0, max(duration, frame_times[-1] + 1e-6), 1.0 / fps)
    idx = np.searchsorted(frame_times, wanted - 1e-6, side="left")
    idx = np.unique(np.clip(idx, 0, len(frame_times) - 1))
    return idx.astype(np.int64), frame_times[idx]


def _target_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_FRAME_SIDE / max(width, height, 1))
    # decord wants even sizes for some pixel formats; -1 would keep the source size.
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


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
        tw, th = _target_size(media.width, media.height) if media.width else (-1, -1)
        reader = decord.VideoReader(str(media.path), ctx=decord.cpu(0), width=tw, height=th)
        n = len(reader)
        times = reader.get_frame_timestamp(np.arange(n))[:, 0].astype(np.float64)
    except (decord.DECORDError, RuntimeError, IndexError) as e:
        raise MediaError(f"cannot decode video: {_decoder_reason(e)}") from e
    if n == 0:
        raise MediaError("video has no frames")
    duration = float(media.duration or (times[-1] + 1.0 / max(reader.get_avg_fps(), 1e-3)))
    idx, sample_times = sample_indices(times, duration, fps)
    interval = 1.0 / fps
    for lo in range(0, len(idx), batch_size):
        chunk, chunk_times = idx[lo : lo + batch_size], sample_times[lo : lo + batch_size]
        frames, kept = _get_batch(reader, chunk, chunk_times)
        last = lo + batch_size >= len(idx)
        if len(frames) or last:
            yield FrameBatch(media, frames, kept, interval, last=last)


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


def load_audio(media: MediaFile) -> AudioClip | None:
    """The first audio stream as 16 kHz mono float32, or None when the file has no audio stream."""
    import av

    chunks: list[np.ndarray] = []
    try:
        with av.open(str(media.path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_SAMPLE_RATE)
            for frame in _decode_tolerant(container, stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"cannot decode audio: {str(e).splitlines()[0][:200]}") from e
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return AudioClip(media, samples, AUDIO_SAMPLE_RATE)


def _decode_tolerant(container: Any, stream: Any) -> Iterator[Any]:
    """Decode packets one by one so a corrupt packet costs that packet, not the whole track."""
    import av

    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue


def load_image(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as src:
            src.draft("RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))  # JPEG: decode at reduced scale
            if src.width * src.height > MAX_DECODE_PIXELS:
                raise MediaError(
                    f"image too large to decode safely ({src.width}x{src.height} pixels, "
                    f"limit {MAX_DECODE_PIXELS // 1_000_000} Mpx)"
                )
            img = ImageOps.exif_transpose(src)
            img.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            return np.asarray(img.convert("RGB"))
    except Image.DecompressionBombError as e:
        raise MediaError(f"image too large to decode safely ({e})") from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise MediaError(f"cannot read image: {e}") from e
