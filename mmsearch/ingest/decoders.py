"""Which frame decoder samples video frames (`--decoder auto|decord|pyav`); `auto` is PyAV.

PyAV (`decode.py`) is the default everywhere: its one sequential pass also feeds shot detection, turns rotated
phone video upright, gives variable-frame-rate video a frame for every sample time and keeps what decodes of a
cut-off file. decord (`decode_decord.py`, wheels only for Linux x86_64 and Windows amd64) samples the same times at
the same sizes by seeking; it is there for comparison and for users who measured it faster on their media.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..errors import UsageError
from ..types import FrameBatch, MediaFile

FrameDecoder = Callable[[MediaFile, float, int], Iterator[FrameBatch]]


@dataclass(frozen=True)
class DecoderEntry:
    package: str  # what must be importable for this decoder to work
    module: str  # the module (in this package) whose `iter_frames` it is


# In `auto` preference order: PyAV first (see the module docstring), then decord.
DECODERS: dict[str, DecoderEntry] = {
    "pyav": DecoderEntry("av", "mmsearch.ingest.decode"),
    "decord": DecoderEntry("decord", "mmsearch.ingest.decode_decord"),
}
AUTO = "auto"


def installed(name: str) -> bool:
    return importlib.util.find_spec(DECODERS[name].package) is not None


def resolve_decoder(name: str) -> str:
    """The decoder `name` stands for; UsageError when unknown or (asked for by name) not installed."""
    if name == AUTO:
        for candidate in DECODERS:
            if installed(candidate):
                return candidate
        raise UsageError("no video decoder is installed", hint="pip install av (or decord on Linux x86_64/Windows)")
    if name not in DECODERS:
        raise UsageError(f"--decoder must be {AUTO}, {', '.join(DECODERS)}; got {name!r}")
    if not installed(name):
        raise UsageError(
            f"--decoder {name}: the {DECODERS[name].package!r} package is not installed",
            hint=f"use --decoder {AUTO}, or install it where it has wheels",
        )
    return name


def frame_decoder(name: str) -> FrameDecoder:
    """`iter_frames(media, fps, batch_size)` of the decoder `name` (auto, decord or pyav)."""
    module = importlib.import_module(DECODERS[resolve_decoder(name)].module)
    decode: FrameDecoder = module.iter_frames
    return decode
