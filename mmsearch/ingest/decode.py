"""Decode stage (PyAV): sampled video frames with their presentation times in one pass that also feeds shot
detection, still images; audio is decoded in `audio.py` (re-exported here).

Frame times are on the container's timeline (see `audio.py`): a frame's own presentation time, so a file whose
timestamps start at 1.4 s has its first frame at 1.4 s, as a browser's player shows it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import MediaError
from ..types import FrameBatch, MediaFile
from .audio import AUDIO_SAMPLE_RATE, AUDIO_WINDOW_SECONDS, iter_audio, load_audio
from .streams import decode_until_error, decoder_reason

log = logging.getLogger(__name__)

__all__ = ["AUDIO_SAMPLE_RATE", "AUDIO_WINDOW_SECONDS", "iter_audio", "iter_frames", "load_audio", "load_image"]

# CLIP preprocessing resizes to 224 px anyway; decoding smaller saves memory and resize time.
MAX_FRAME_SIDE = 448
# Pillow refuses "decompression bombs" above ~179 Mpx; we shrink stills to this before embedding.
MAX_IMAGE_SIDE = 1024
# Stills that still need more pixels than this after JPEG draft-mode reduction are refused: 64 Mpx of RGB is
# ~190 MB decoded, and formats like PNG cannot be decoded at a reduced scale.
MAX_DECODE_PIXELS = 64_000_000


def sample_indices(frame_times: np.ndarray, end: float, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """For sample times 0, 1/fps, 2/fps, ... (from the first frame's, up to `end`) pick the first frame shown at or
    after each; drop repeats."""
    if len(frame_times) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    first = np.floor(max(float(frame_times[0]), 0.0) * fps) / fps
    wanted = np.arange(first, max(end, frame_times[-1] + 1e-6), 1.0 / fps)
    idx = np.searchsorted(frame_times, wanted - 1e-6, side="left")
    idx = np.unique(np.clip(idx, 0, len(frame_times) - 1))
    return idx.astype(np.int64), frame_times[idx]


def target_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_FRAME_SIDE / max(width, height, 1))
    # decord wants even sizes for some pixel formats; -1 would keep the source size.
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class ShotSink(Protocol):
    """Receives every decoded frame, small, in order: shot detection fed from the embedding decode pass."""

    frame_size: tuple[int, int]  # (width, height) the detector wants

    def feed(self, time: float, frame: np.ndarray) -> None: ...


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded frame as its display matrix says (rotation in degrees counter-clockwise)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frame, turns)) if turns else frame


def iter_frames(
    media: MediaFile, fps: float, batch_size: int = 32, shots: ShotSink | None = None
) -> Iterator[FrameBatch]:
    """One sequential decode pass: sampled frames (upright, true aspect) in batches, every frame to `shots`.

    Sample times are 0, 1/fps, 2/fps, ...; each takes the first frame shown at or after it, by the frame's own
    presentation time, so variable frame rates (realtime VP9, phone video) get a frame for every sample time.
    Decoding stops at the first unreadable packet of a cut-off file; what decoded is kept and the last batch
    says where it stopped.
    """
    import av

    interval = 1.0 / fps
    tw, th = target_size(media.width, media.height) if media.width else (0, 0)
    frames: list[np.ndarray] = []
    times: list[float] = []
    stopped_at: float | None = None
    try:
        container = av.open(str(media.path), metadata_errors="ignore")
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"cannot decode video: {decoder_reason(e)}") from e
    with container:
        stream = next((s for s in container.streams.video if not _attached_pic(s)), None)
        if stream is None:
            raise MediaError("cannot decode video: no video stream")
        stream.thread_type = "AUTO"
        next_sample, last_time, decoded = 0.0, 0.0, 0
        decoder = decode_until_error(container, stream)
        for frame in decoder:
            t = max(0.0, float(frame.time)) if frame.time is not None else decoded / float(stream.average_rate or 25)
            decoded, last_time = decoded + 1, t
            if shots is not None:
                sw, sh = shots.frame_size
                shots.feed(t, upright(frame.to_ndarray(width=sw, height=sh, format="rgb24"), media.rotation))
            if t + 1e-6 < next_sample:
                continue
            rgb = frame.to_ndarray(width=tw or frame.width, height=th or frame.height, format="rgb24")
            frames.append(upright(rgb, media.rotation))
            times.append(t)
            next_sample = (np.floor(t * fps + 1e-6) + 1) / fps
            if len(frames) == batch_size:
                yield FrameBatch(media, np.stack(frames), np.asarray(times), interval)
                frames, times = [], []
        if decoder.error is not None or _ends_early(media, last_time, fps):
            stopped_at = last_time if decoded else 0.0
    if decoded == 0:
        raise MediaError(f"cannot decode video: {decoder.error or 'no frame decodes'}")
    batch = np.stack(frames) if frames else np.zeros((0, max(th, 1), max(tw, 1), 3), np.uint8)
    yield FrameBatch(media, batch, np.asarray(times), interval, last=True, truncated_at=stopped_at)


# A video whose frames end this much before its container duration was cut off (a duration rounding or a
# trailing audio tail is far shorter).
TRUNCATION_SLACK_SECONDS = 2.0


def _ends_early(media: MediaFile, last_time: float, fps: float) -> bool:
    return bool(media.duration) and last_time < (media.end or 0.0) - max(TRUNCATION_SLACK_SECONDS, 2.0 / fps)


def _attached_pic(stream: Any) -> bool:
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _to_8bit(img: Any) -> Any:
    """16/32-bit grayscale ("I;16", "I") would clip to white in convert("RGB"); scale it to 8 bits instead."""
    from PIL import Image

    if img.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return img
    values = np.asarray(img, dtype=np.float64)
    full = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
    return Image.fromarray(np.clip(values / full * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


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
            img = _to_8bit(ImageOps.exif_transpose(src))
            img.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            return np.asarray(img.convert("RGB"))
    except Image.DecompressionBombError as e:
        raise MediaError(f"image too large to decode safely ({e})") from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise MediaError(f"cannot read image: {e}") from e
