"""OCR beside the other stages: frames go to a thread as they arrive, each file's lines come back at its end.

OCR used to run in the consumer thread between embedding batches, so CLIP waited for it and it waited for CLIP.
Here one thread per ingest run reads text while the consumer embeds frames, Whisper transcribes in its own thread
and the decode workers decode: the stages overlap within the cores (onnxruntime releases the GIL while it runs).
A bounded queue keeps memory in check: when OCR falls QUEUE_BATCHES frame batches behind, handing it more waits.
The thread stops when it has nothing left to read, and starts again with the next frames.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from ..types import StageTimes
from .ocr import OcrEngine, OcrLine, OcrTracker

# Frame batches (32 frames of 640x360: 22 MB each) waiting for OCR at most.
QUEUE_BATCHES = 8


class OcrThread:
    def __init__(self, engine: OcrEngine, times: StageTimes) -> None:
        self._engine = engine
        self._times = times
        self._queue: queue.Queue[tuple[str, Path, Any]] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._trackers: dict[Path, OcrTracker] = {}
        self._errors: dict[Path, BaseException] = {}

    def add(self, path: Path, frames: np.ndarray, times: np.ndarray, interval: float) -> None:
        self._send("frames", path, (frames, times, interval))

    def finish(self, path: Path, end: float | None) -> tuple[list[OcrLine], OcrTracker | None]:
        """The file's lines (and its tracker, for its counts) once every frame handed in was read; re-raises what
        reading them raised."""
        done: Future[tuple[list[OcrLine], OcrTracker | None]] = Future()
        self._send("finish", path, (end, done))
        return done.result()

    def drop(self, path: Path) -> None:
        self._send("drop", path, None)

    def _send(self, kind: str, path: Path, payload: Any) -> None:
        self._queue.put((kind, path, payload))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mmsearch-ocr", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            kind, path, payload = self._queue.get()
            if kind == "frames":
                self._read(path, *payload)
            elif kind == "finish":
                self._finish(path, *payload)
            else:
                self._trackers.pop(path, None)
                self._errors.pop(path, None)
            with self._lock:
                if self._queue.empty() and not self._trackers:
                    self._thread = None
                    return

    def _read(self, path: Path, frames: np.ndarray, times: np.ndarray, interval: float) -> None:
        if path in self._errors:
            return
        start = time.perf_counter()
        tracker = self._trackers.setdefault(path, OcrTracker(self._engine))
        try:
            for frame, t in zip(frames, times, strict=True):
                tracker.add(frame, float(t), interval)
        except BaseException as e:  # noqa: BLE001 (handed to the file's finish, which fails that file with it)
            self._errors[path] = e
        self._times.ocr += time.perf_counter() - start

    def _finish(self, path: Path, end: float | None, done: Future[tuple[list[OcrLine], OcrTracker | None]]) -> None:
        tracker = self._trackers.pop(path, None)
        error = self._errors.pop(path, None)
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(([] if tracker is None else tracker.finish(end), tracker))
