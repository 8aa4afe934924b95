"""Media with more than one track of words: one voice per stereo channel, subtitle streams and sidecars."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .media import SAMPLE_RATE, Shot, Utterance, make_video, mix_speech, run_ffmpeg

# One sentence per channel, spoken at the same time: the downmix is two voices on top of each other.
LEFT = Utterance("The red balloon floated over the quiet harbour.", 0.5)
RIGHT = Utterance("Please send the invoice before Friday morning.", 0.8, voice="en-us+f3")


def make_stereo(path: Path, left: Utterance = LEFT, right: Utterance = RIGHT, duration: float = 5.0) -> Path:
    """A 16-bit stereo WAV with `left` only in channel 0 and `right` only in channel 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a, _ = mix_speech([left], duration)
    b, _ = mix_speech([right], duration)
    with tempfile.TemporaryDirectory(prefix="mmsearch-stereo-") as tmp:
        raw = Path(tmp) / "stereo.s16le"
        raw.write_bytes(np.stack([a, b], axis=1).astype("<i2").tobytes())
        run_ffmpeg("-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "2", "-i", str(raw), "-c:a", "pcm_s16le", str(path))
    return path


def write_srt(path: Path, cues: Sequence[tuple[float, float, str]]) -> Path:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    blocks = [f"{n}\n{stamp(a)} --> {stamp(b)}\n{text}\n" for n, (a, b, text) in enumerate(cues, 1)]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


def make_subtitled(
    path: Path, cues: Sequence[tuple[float, float, str]], language: str = "eng", speech: bool = False
) -> Path:
    """A 10 s video with one embedded text subtitle stream: subrip in .mkv, mov_text in .mp4 (by suffix).

    With `speech`, each cue's text is also spoken at the cue's start (espeak-ng)."""
    codec = {".mkv": "srt", ".mp4": "mov_text"}[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    utterances = [Utterance(text, start) for start, _, text in cues] if speech else []
    with tempfile.TemporaryDirectory(prefix="mmsearch-subs-") as tmp:
        base = make_video(Path(tmp) / "base.mp4", [Shot("gray", 10.0)], utterances, size=(160, 120)).path
        srt = write_srt(Path(tmp) / "cues.srt", cues)
        run_ffmpeg("-i", str(base), "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy", "-c:s", codec,
                "-metadata:s:s:0", f"language={language}", str(path))  # fmt: skip
    return path
