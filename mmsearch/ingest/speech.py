"""Speech stage in a background thread: audio windows in, speech segments (at file times) out.

The main thread keeps listening (to workers and to Ctrl-C) while Whisper runs. A finished run stops the idle
thread and joins it. An interrupted run does not wait: CTranslate2 cannot be interrupted inside a 30 s chunk
(with beam search and temperature fallback, up to 77 s between two results on a 2-core CPU), so the thread is
abandoned there and its window's file stays unindexed. The thread stops at its next check; until then the
interpreter must not finalize around it (a thread woken inside native code during finalization aborts the
process with "terminate called without an active exception"): a normal exit waits for it (`atexit`), the CLI
exits at once with `os._exit` once everything is committed (`exit_now_if_abandoned`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, replace

from ..types import AudioClip, MediaFile, SpeechSegment, StageTimes
from .transcribe import Transcriber

# Windows waiting for Whisper; bounds memory to a few windows whatever the file's length.
QUEUED_WINDOWS = 2

# Speech threads left inside native ASR by an interrupted run.
_abandoned: list[threading.Thread] = []


def abandoned_work() -> bool:
    """Whether an abandoned speech thread is still inside native ASR code."""
    return any(t.is_alive() for t in _abandoned)


def exit_now_if_abandoned(code: int) -> None:
    """Exit with `code` at once, skipping interpreter finalization, when ASR work was abandoned (see the module
    docstring). Only for a process's entry point, after everything is committed and closed."""
    if abandoned_work():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@atexit.register
def _wait_for_abandoned() -> None:
    """Library callers exit normally: wait for the chunk under way rather than abort the process."""
    for thread in _abandoned:
        thread.join()


@dataclass(frozen=True)
class SpeechResult:
    media: MediaFile
    segments: list[SpeechSegment]
    seconds: float  # length of the window, for progress
    error: str | None = None


class SpeechThread:
    def __init__(self, transcriber: Transcriber, times: StageTimes) -> None:
        self._transcriber = transcriber
        self._times = times
        self._inbox: queue.Queue[AudioClip | None] = queue.Queue(maxsize=QUEUED_WINDOWS)
        self.results: queue.Queue[SpeechResult] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mmsearch-asr", daemon=True)
        self._thread.start()

    def submit(self, clip: AudioClip) -> None:
        """Blocks while the queue is full, in short waits, so Ctrl-C still lands in the caller at once."""
        while True:
            try:
                self._inbox.put(clip, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    raise RuntimeError("speech thread stopped") from None

    def stop(self) -> None:
        """Stop the thread once its work is collected: it is idle, waiting for a window, and exits at once."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            self._inbox.get_nowait()
        self._thread.join()

    def abandon(self) -> None:
        """Interrupted: the thread stops at its next check (between Whisper chunks) and nobody waits for it;
        what it was transcribing is dropped (its file is not stored, so the next run redoes it)."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._inbox.get_nowait()
        _abandoned[:] = [t for t in (*_abandoned, self._thread) if t.is_alive()]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                clip = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if clip is None:
                return
            t0 = time.perf_counter()
            try:
                segments = self._transcribe(clip)
                self.results.put(SpeechResult(clip.file, segments, clip.duration))
            except Exception as e:  # a window Whisper cannot take fails its file, not the run
                self.results.put(
                    SpeechResult(clip.file, [], clip.duration, str(e).splitlines()[0][:300] if str(e) else repr(e))
                )
            self._times.transcribe += time.perf_counter() - t0

    def _transcribe(self, clip: AudioClip) -> list[SpeechSegment]:
        return transcribe_clip(self._transcriber, clip, self._stop)


def transcribe_clip(
    transcriber: Transcriber, clip: AudioClip, stop: threading.Event | None = None
) -> list[SpeechSegment]:
    """Speech segments of one window at file times; a window whose channels carry different voices is
    transcribed channel by channel (each segment keeps its `channel`), in time order."""
    parts: list[tuple[int | None, AudioClip]]
    if clip.channels is None:
        parts = [(None, clip)]
    else:
        parts = [(n, replace(clip, samples=clip.channels[n], channels=None)) for n in range(len(clip.channels))]
    out: list[SpeechSegment] = []
    for channel, part in parts:
        for seg in transcriber.transcribe(part, stop):
            start, end = round(seg.start + clip.start, 3), round(seg.end + clip.start, 3)
            out.append(replace(seg, start=start, end=end, channel=channel))
    return sorted(out, key=lambda s: (s.start, s.channel or 0))
