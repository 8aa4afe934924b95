"""Ctrl-C handling of `index` (ingest/interrupts.py, speech.py): held while a file is stored, later presses only
acknowledged, an abandoned Whisper thread never waited for by the run. Real SIGINTs to this process."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mmsearch.ingest.interrupts import Interrupts
from mmsearch.ingest.speech import SpeechThread, abandoned_work
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.types import AudioClip, MediaFile, MediaKind, SpeechSegment, StageTimes


class Acks:
    def __init__(self) -> None:
        self.count = 0

    def interrupted(self) -> None:
        self.count += 1


def test_first_press_raises_at_once_and_later_presses_are_only_acknowledged() -> None:
    acks = Acks()
    before = signal.getsignal(signal.SIGINT)
    with Interrupts(acks).installed():
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)  # winding down: must not be cut short
    assert acks.count == 2
    assert signal.getsignal(signal.SIGINT) is before


def test_press_while_storing_lands_when_the_store_ends() -> None:
    acks = Acks()
    stored = []
    with Interrupts(acks).installed() as interrupts, pytest.raises(KeyboardInterrupt):
        with interrupts.shielded():
            signal.raise_signal(signal.SIGINT)
            stored.append("catalog rows")
            stored.append("vectors")  # the whole file, although Ctrl-C came in between
        stored.append("next file")
    assert stored == ["catalog rows", "vectors"] and acks.count == 1


class SlowTranscriber:
    """Stands in for CTranslate2 inside a chunk: busy until released, whatever the stop flag says."""

    options = AsrOptions()

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()

    def transcribe(self, clip: AudioClip, stop: threading.Event | None = None) -> list[SpeechSegment]:
        self.inside.set()
        self.release.wait(30)
        return [SpeechSegment(0.0, 1.0, "late")]


def test_abandoned_speech_thread_is_not_waited_for() -> None:
    slow = SlowTranscriber()
    speech = SpeechThread(slow, StageTimes())
    media = MediaFile(Path(__file__), MediaKind.AUDIO, 1, 0, has_audio=True, duration=1.0)
    speech.submit(AudioClip(media, np.zeros(16000, np.float32), 16000))
    assert slow.inside.wait(10)
    t0 = time.monotonic()
    speech.abandon()
    assert time.monotonic() - t0 < 1.0 and abandoned_work()
    slow.release.set()  # the chunk ends; the thread sees the stop flag and exits on its own
    deadline = time.monotonic() + 10
    while abandoned_work() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not abandoned_work()
