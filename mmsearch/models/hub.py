"""Where models run and whether their hub can be reached: shared by the CLIP towers and Whisper."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "gpu":
        return "cuda"
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
