"""Where models run and whether their hub can be reached: shared by the CLIP towers and Whisper."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import socket
import sys
from collections.abc import Iterator

from ..errors import UsageError

# `--device` values: gpu is the older spelling of cuda; auto picks CUDA, else Apple's MPS, else the CPU.
DEVICES = ("auto", "cpu", "gpu", "cuda", "mps")


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}; got {device!r}")


@functools.cache
def mps_works() -> bool:
    """MPS is present *and* runs a kernel: is_available() is true on some macOS/torch pairs that then fail."""
    import torch

    backend = getattr(torch.backends, "mps", None)
    if backend is None or not backend.is_available():
        return False
    try:
        return bool((torch.ones(2, device="mps") * 2).sum().cpu().item() == 4.0)
    except RuntimeError:
        return False


def cuda_driver_present() -> bool:
    """Whether the CUDA driver library can be loaded at all: without it torch has no CUDA either, and `auto` is
    the CPU without importing torch (2-7 s): a query on an ONNX index then runs without torch. Loading the library
    initialises nothing, so a process that forks workers afterwards is unaffected."""
    if sys.platform == "darwin":
        return False
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def resolve_device(device: str, allow_mps: bool = True) -> str:
    """The torch device for `--device`. `allow_mps=False` for models whose runtime has no MPS kernels (Whisper)."""
    check_device(device)
    if device == "auto" and sys.platform != "darwin" and "torch" not in sys.modules and not cuda_driver_present():
        return "cpu"  # no CUDA driver and no MPS off macOS: torch could only say the same
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if allow_mps and mps_works() else "cpu"
    if device in ("gpu", "cuda"):
        return "cuda"
    if device == "mps":
        if not allow_mps:
            return "cpu"
        if not mps_works():
            raise UsageError(
                "--device mps: this torch build sees no working Apple MPS backend", hint="use --device auto"
            )
    return device


HUB_HOST = ("huggingface.co", 443)


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connect, so offline machines fail in seconds instead of minutes of download retries."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def hub_mode() -> Iterator[None]:
    """Use only the local Hugging Face cache when the hub cannot be reached."""
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = saved or not hub_reachable()
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved
