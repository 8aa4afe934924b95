"""Ctrl-C handling of `index` (ingest/interrupts.py, speech.py): held while a file is stored, later presses only
acknowledged, an abandoned Whisper thread never waited for by the run. Real SIGINTs to this process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmsearch
from mmsearch.index.catalog import Catalog
from mmsearch.index.check import check_index
from mmsearch.ingest.interrupts import Interrupts
from mmsearch.ingest.speech import SpeechThread, abandoned_work
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.testing.media import Utterance, make_audio
from mmsearch.types import AudioClip, MediaFile, MediaKind, SpeechSegment, StageTimes

REPO = Path(mmsearch.__file__).resolve().parent.parent


class Acks:
    def __init__(self) -> None:
        self.count = 0

    def interrupted(self) -> None:
        self.count += 1


def test_first_press_raises_at_once_and_later_presses_are_only_acknowledged() -> None:
    acks = Acks()
    before = signal.getsignal(signal.SIGINT)
    try:
        with Interrupts(acks).installed():
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)  # winding down: must not be cut short
        assert acks.count == 2
        # The process is on its way out (exit 130): a press now must not interrupt the exit either.
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_run_without_ctrl_c_gives_the_handler_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    with Interrupts(Acks()).installed():
        assert signal.getsignal(signal.SIGINT) is not before
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


# `mmsearch index` with an ASR backend that, like CTranslate2 inside a chunk, cannot be interrupted: it says when
# it is inside, then stays busy for two minutes whatever the stop flag says.
STUCK_ASR = """
import sys, time
from pathlib import Path
from mmsearch.cli.app import main
from mmsearch.ingest import transcribe

INSIDE = Path(sys.argv.pop())

class Stuck:
    def __init__(self, options):
        self.options = options

    def transcribe(self, clip, stop=None):
        INSIDE.touch()
        time.sleep(120)
        return []

transcribe.BACKENDS["stuck"] = Stuck
main()
"""


@pytest.mark.parametrize("later", [(), (0.02,), (0.1,), (0.02, 0.1, 0.3)])
def test_ctrl_c_does_not_wait_for_an_uninterruptible_asr_chunk(tmp_path: Path, later: tuple[float, ...]) -> None:
    """Deterministic twin of the Whisper test in test_ingest_media.py: SIGINT lands while the ASR backend is
    inside a chunk that would take two minutes; the run exits 130 within seconds, the finished image committed,
    the interrupted audio neither indexed nor failed. `later`: seconds before each further Ctrl-C (while the run
    winds down, while the CLI exits)."""
    media = tmp_path / "media"
    media.mkdir()
    make_audio(media / "talk.wav", [Utterance("hello there", 0.2)])
    Image.new("RGB", (64, 48), "red").save(media / "a.png")
    inside, index_dir = tmp_path / "inside", tmp_path / "i"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # One worker takes a.png first: it is stored before the audio reaches the ASR.
    args = ["index", str(media), "--index", str(index_dir), "--model", "test:hash", "--asr-backend", "stuck",
            "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", STUCK_ASR, *args, str(inside)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not inside.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "ASR never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    for gap in later:
        time.sleep(gap)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=150)
    took, text = time.monotonic() - sent, err.decode(errors="replace")
    assert proc.returncode == 130 and took < 10, f"exit {proc.returncode} {took:.1f} s after Ctrl-C: {text}"
    assert "finishing current files" in text and "Traceback" not in text
    catalog = Catalog.open(index_dir / "catalog.sqlite", readonly=True)
    try:
        assert [Path(f.path).name for f in catalog.files()] == ["a.png"]
        assert catalog.failures() == {}
    finally:
        catalog.close()
    assert check_index(index_dir).problems == []
