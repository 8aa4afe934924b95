"""Speech stage in a background thread: audio windows in, speech segments (at file times) out.

The main thread keeps listening (to workers and to Ctrl-C) while Whisper runs; on stop, the thread finishes the
window it is in at most (faster-whisper yields between 30 s chunks, where we check) and exits, so the process
never exits while native ASR threads are still running.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass

from ..types import AudioClip, MediaFile, SpeechSegment, StageTimes
from .transcribe import Transcriber

# Windows waiting for Whisper; bounds memory to a few windows whatever the file's length.
QUEUED_WINDOWS = 2


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
        """Stop after the current chunk; wait for the thread (native ASR must not outlive the interpreter)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._inbox.get_nowait()
            self._thread.join(timeout=0.1)

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
        out: list[SpeechSegment] = []
        for seg in self._transcriber.transcribe(clip, self._stop):
            out.append(SpeechSegment(round(seg.start + clip.start, 3), round(seg.end + clip.start, 3), seg.text))
        return out
