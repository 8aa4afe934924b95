"""A moment cut out of its file with ffmpeg: stream copy from the keyframe at or before its start (fast, no loss,
may start a little early), or re-encoded to start and end on the exact frames (`exact`)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import BadInput, MediaError, UsageError
from .cuts import STILL_SUFFIXES

_RANGE = re.compile(r"^(\d+(?:\.\d*)?)-(\d+(?:\.\d*)?)$")
# --exact: H.264 at a quality an editor can cut from (CRF 18 is visually lossless for x264) in an MP4.
EXACT_VIDEO = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac")
EXACT_SUFFIX = ".mp4"


@dataclass(frozen=True)
class ClipSpec:
    """A moment to cut: PATH@START-END, seconds."""

    path: Path
    start: float
    end: float

    @property
    def name(self) -> str:
        return f"{self.path.stem}_{self.start:.2f}-{self.end:.2f}"


def parse_clip(spec: str) -> ClipSpec:
    """`PATH@START-END` in seconds (the syntax of `query --like`), e.g. `talk.mp4@12.5-20`."""
    head, sep, tail = spec.rpartition("@")
    match = _RANGE.match(tail.strip()) if sep else None
    if not match:
        raise UsageError(f"{spec!r} is not PATH@START-END", hint="e.g. talk.mp4@12.5-20 (seconds)")
    start, end = float(match.group(1)), float(match.group(2))
    if not end > start:
        raise UsageError(f"{spec!r}: END must be greater than START")
    return ClipSpec(Path(head), start, end)


def cut_clip(spec: ClipSpec, out_dir: Path, exact: bool = False) -> Path:
    """Cut `spec` into out_dir/NAME_START-END.EXT; the path written."""
    source = spec.path
    if not source.is_file():
        raise BadInput(f"{source} does not exist", hint="give the path of a media file")
    if source.suffix.lower() in STILL_SUFFIXES:
        raise BadInput(f"{source.name} is a still image: it has no time span to cut", hint="open the image itself")
    video, duration = _probe(source)
    if duration is not None and spec.start >= duration:
        raise BadInput(
            f"{source.name} has nothing between {spec.start:g} s and {spec.end:g} s",
            hint=f"it is {duration:.1f} s long",
        )
    suffix = EXACT_SUFFIX if exact and video else source.suffix
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{spec.name}{suffix}"
    codecs = (EXACT_VIDEO if video else ()) if exact else ("-c", "copy", "-avoid_negative_ts", "make_zero")
    command = [
        "ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", f"{spec.start:.3f}", "-i", os.fspath(source),
        "-t", f"{spec.end - spec.start:.3f}", "-map", "0:v:0?", "-map", "0:a:0?", *codecs, os.fspath(target),
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise MediaError("ffmpeg is not installed", hint="install ffmpeg to cut clips") from e
    except subprocess.CalledProcessError as e:
        raise MediaError(f"ffmpeg could not cut {source.name}: {e.stderr.strip()[-300:]}") from e
    if not target.is_file() or target.stat().st_size == 0:
        target.unlink(missing_ok=True)
        raise BadInput(f"{source.name} has nothing between {spec.start:g} s and {spec.end:g} s", hint="check the times")
    return target


def _probe(path: Path) -> tuple[bool, float | None]:
    """Whether the file has pictures, and its length in seconds when the container says."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            duration = container.duration / av.time_base if container.duration else None
            return bool(container.streams.video), duration
    except (OSError, av.FFmpegError) as e:
        raise BadInput(f"cannot read {path}: {e}") from e
