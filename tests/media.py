"""The golden media set shared by end-to-end and CLI tests, with its ground truth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmsearch.testing.media import Shot, Utterance, make_audio, make_image, make_video

SPOKEN = "the red fox jumped over the wooden fence"
AUDIO_SPOKEN = "seven purple whales sing under the frozen moon"


@dataclass(frozen=True)
class GoldenMedia:
    root: Path
    shots: Path  # red 0-2 s | testsrc 2-4 s | blue 4-6 s, no audio track
    talk: Path  # smptebars 0-3 s | mandelbrot 3-6 s, SPOKEN from 2.0 s
    talk_speech_start: float
    talk_speech_end: float
    speech: Path  # audio only, AUDIO_SPOKEN from 1.0 s
    still: Path  # rgbtestsrc still image


def make_golden(root: Path) -> GoldenMedia:
    root.mkdir(parents=True, exist_ok=True)
    shots = make_video(root / "shots.mp4", [Shot("red", 2), Shot("testsrc", 2), Shot("blue", 2)], audio=False)
    talk = make_video(
        root / "talk.mp4", [Shot("smptebars", 3), Shot("mandelbrot", 3)], [Utterance(SPOKEN, 2.0)], audio=True
    )
    speech = make_audio(root / "speech.wav", [Utterance(AUDIO_SPOKEN, 1.0)])
    still = make_image(root / "still.png", "rgbtestsrc")
    return GoldenMedia(
        root=root,
        shots=shots.path,
        talk=talk.path,
        talk_speech_start=talk.utterances[0].start,
        talk_speech_end=talk.utterances[0].end,
        speech=speech.path,
        still=still,
    )
