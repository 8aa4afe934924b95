"""Audio windows for the audio (CLAP) space: fixed windows of the soundtrack, overlapping by half."""

from __future__ import annotations

import numpy as np

from ..types import AudioClip

# 5 s windows with a 2.5 s hop: long enough for CLAP to hear a sound event, and every event lies whole in one.
WINDOW_SECONDS = 5.0
HOP_SECONDS = 2.5
# A shorter tail than this is covered by the window before it.
MIN_TAIL_SECONDS = 1.0


def windows(clip: AudioClip) -> list[tuple[float, float, np.ndarray]]:
    """(start, end, samples) of each window; a clip shorter than one window is one window."""
    rate = clip.sample_rate
    size, hop = int(WINDOW_SECONDS * rate), int(HOP_SECONDS * rate)
    total = len(clip.samples)
    if total == 0:
        return []
    out = []
    for lo in range(0, max(total - size, 0) + 1, hop):
        out.append((lo / rate, min(lo + size, total) / rate, clip.samples[lo : lo + size]))
    covered = out[-1][1] * rate
    if total - covered >= MIN_TAIL_SECONDS * rate:
        lo = max(total - size, 0)
        out.append((lo / rate, total / rate, clip.samples[lo:]))
    return out
