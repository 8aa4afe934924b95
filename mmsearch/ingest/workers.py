"""Decode workers: probing, decoding and shot detection run in child processes, so a native decoder that crashes
(any signal) or hangs on a hostile file costs only that file.

Each worker is a spawned process with a pipe; the pool hands it one file at a time and relays what it sends
(frame batches, shots, audio windows, an image, done, or an error) as typed events, one frozen dataclass per
kind (`WorkerEvent`). A worker that dies mid-file fails that file ("decoder crashed (SIGSEGV)") and is replaced;
one that sends nothing for longer than its budget (base + factor x the file's duration, counted only while the
pool waits for it) is killed and fails the file with "decoder timed out after N s".
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MediaError, UsageError
from ..types import AudioClip, FrameBatch, MediaFile, MediaKind

log = logging.getLogger(__name__)

# Memory one decode worker may need (frames in flight, TransNetV2, ffmpeg buffers), for the default count.
WORKER_MEMORY_BYTES = 1 << 30
MAX_DEFAULT_WORKERS = 8
# How long the pool waits for a message before telling the runner it is idle (so it embeds what it holds).
IDLE_SECONDS = 0.05


def default_workers() -> int:
    """As many as the cores allow, fewer when memory is short (each worker may hold ~1 GB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        memory = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        memory = WORKER_MEMORY_BYTES * cores
    return max(1, min(cores, memory // WORKER_MEMORY_BYTES, MAX_DEFAULT_WORKERS))


@dataclass(frozen=True)
class DecodeSettings:
    """How every file of a run is decoded (built once from the run's options)."""

    fps: float
    batch_size: int
    shots: str  # a shot detector name from shots.DETECTORS, or "none"
    audio_window: float
    decoder: str = "pyav"  # a name from decoders.DECODERS (resolved, not "auto")


@dataclass(frozen=True)
class DecodeTask:
    media: MediaFile
    settings: DecodeSettings
    audio: bool  # decode the audio track (for speech, audio windows) too


# -- what a worker reports (pickled through its pipe: module-level frozen dataclasses) --------------------------


@dataclass(frozen=True)
class Ready:
    """Sent once by a worker when it has started (got past importing the parent's main module)."""


@dataclass(frozen=True)
class Idle:
    """No worker had anything to say for IDLE_SECONDS (the runner embeds what it holds)."""


@dataclass(frozen=True)
class Probed:
    path: Path
    result: MediaFile | str  # the probed file, or why it cannot be indexed


@dataclass(frozen=True)
class Frames:
    media: MediaFile
    batch: FrameBatch


@dataclass(frozen=True)
class Image:
    media: MediaFile
    array: np.ndarray  # the decoded picture (H x W x 3 uint8)


@dataclass(frozen=True)
class Shots:
    media: MediaFile
    shots: list[tuple[float, float]]
    seconds: float  # spent detecting, beside decoding


@dataclass(frozen=True)
class Audio:
    media: MediaFile
    clip: AudioClip


@dataclass(frozen=True)
class Done:
    media: MediaFile


@dataclass(frozen=True)
class Failed:
    media: MediaFile | None
    reason: str


# What one file's decode reports, and everything a worker or the pool may say.
FileEvent = Frames | Image | Shots | Audio | Done | Failed
WorkerEvent = Ready | Idle | Probed | FileEvent


@dataclass(frozen=True)
class Budget:
    base: float = 60.0
    per_media_second: float = 1.0

    def seconds(self, media: MediaFile | None) -> float:
        return self.base + self.per_media_second * float((media.duration if media else None) or 0.0)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


# -- the worker process ------------------------------------------------------------------------------------


def _worker_main(conn: Connection) -> None:
    # Ctrl-C reaches the whole process group; the parent decides what stops, and kills us when it must.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger().handlers[:] = [logging.NullHandler()]
    conn.send(Ready())  # started: from now on, dying costs one file, not the run
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            if isinstance(task, Path):
                conn.send(Probed(task, _probe_one(task)))
            else:
                for event in _decode(task):
                    conn.send(event)
                conn.send(Done(task.media))
        except MediaError as e:
            conn.send(Failed(getattr(task, "media", None), e.message))
        except Exception as e:  # one file's unexpected decoder error is that file's failure, reported in one line
            text = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            conn.send(Failed(getattr(task, "media", None), text))


def _probe_one(path: Path) -> MediaFile | str:
    from .discover import probe

    try:
        return probe(path)
    except MediaError as e:
        return e.message


def _decode(task: DecodeTask) -> Iterator[FileEvent]:
    from .decode import iter_audio, iter_frames, load_image
    from .shots import make_detector

    media, how = task.media, task.settings
    if media.kind is MediaKind.IMAGE:
        yield Image(media, load_image(media.path))
        return
    if media.kind is MediaKind.VIDEO:
        detector = make_detector(how.shots)
        timed = _TimedSink(detector) if detector is not None else None
        if how.decoder == "decord":
            from .decode_decord import iter_frames as decord_frames

            for batch in decord_frames(media, how.fps, how.batch_size):
                yield Frames(media, batch)
            if timed is not None:  # decord only seeks to the samples: the shots need every frame, a PyAV pass
                for _ in iter_frames(media, how.fps, how.batch_size, shots=timed):
                    pass
        else:
            for batch in iter_frames(media, how.fps, how.batch_size, shots=timed):
                yield Frames(media, batch)
        if detector is not None and timed is not None:
            t0 = time.perf_counter()
            shots = detector.finish(media.end)
            yield Shots(media, shots, timed.seconds + time.perf_counter() - t0)
    if task.audio and media.has_audio:
        for clip in iter_audio(media, how.audio_window):
            yield Audio(media, clip)


class _TimedSink:
    """Passes frames to a shot detector and counts its seconds (the `shots` stage time)."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self.frame_size = detector.frame_size
        self.seconds = 0.0

    def feed(self, time_s: float, frame: Any) -> None:
        t0 = time.perf_counter()
        self.detector.feed(time_s, frame)
        self.seconds += time.perf_counter() - t0


# -- the pool (parent side) ----------------------------------------------------------------------------------


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child,), name="mmsearch-decode", daemon=True)
        self.process.start()
        child.close()
        self.task: DecodeTask | Path | None = None
        self.silent = 0.0  # seconds the pool has waited for it since its last message
        self.ready = False  # it said so: it got past importing the parent's main module

    def assign(self, task: DecodeTask | Path) -> None:
        self.task = task
        self.silent = 0.0
        self.conn.send(task)

    def stop(self, kill: bool = False) -> None:
        if kill and self.process.is_alive():
            self.process.kill()
        else:
            with contextlib.suppress(OSError):
                self.conn.send(None)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class WorkerPool:
    def __init__(self, workers: int, budget: Budget | None = None) -> None:
        self._ctx = mp.get_context("spawn")  # no fork: the parent holds threads and maybe a CUDA context
        self.size = max(1, workers)
        self.budget = budget or Budget()
        self._workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)

    def close(self, kill: bool = False) -> None:
        for worker in self._workers:
            worker.stop(kill=kill)
        self._workers = []

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def probe(self, paths: Sequence[Path]) -> list[MediaFile | str]:
        results: dict[Path, MediaFile | str] = {}
        for event in self._run(list(paths)):
            if isinstance(event, Probed):
                results[event.path] = event.result
        return [results.get(p, "probe failed") for p in paths]

    def decode(self, tasks: Iterable[DecodeTask]) -> Iterator[FileEvent | Idle]:
        """Events of all tasks, interleaved, as workers report them; `Idle` when none has anything yet.

        `tasks` is read lazily, one task when a worker is free (several machines may be claiming the same files).
        """
        for event in self._run(tasks):
            if not isinstance(event, Probed):
                yield event

    def _run(self, todo: Iterable[Any]) -> Iterator[FileEvent | Idle | Probed]:
        pending = iter(todo)
        task = next(pending, None)
        while True:
            for worker in self._workers:
                if worker.task is None and task is not None:
                    worker.assign(task)
                    task = next(pending, None)
            while task is not None and len(self._workers) < self.size:
                self._workers.append(_Worker(self._ctx))
                self._workers[-1].assign(task)
                task = next(pending, None)
            if task is None and not any(w.task is not None for w in self._workers):
                return
            yield from self._receive()

    def _receive(self) -> Iterator[FileEvent | Idle | Probed]:
        waiting = [w for w in self._workers if w.task is not None]
        began = time.monotonic()
        ready = wait([w.conn for w in waiting] + [w.process.sentinel for w in waiting], timeout=IDLE_SECONDS)
        waited = time.monotonic() - began
        if not ready:
            yield Idle()
        for worker in waiting:
            # Only time spent waiting counts: while the runner embeds, a worker blocked on a full pipe is not slow.
            worker.silent += waited
            if worker.conn in ready:
                yield from self._read(worker)
            elif worker.process.sentinel in ready or not worker.process.is_alive():
                yield self._replace(worker, self._crash_reason(worker))
            elif worker.silent > self.budget.seconds(_media_of(worker.task)):
                limit = self.budget.seconds(_media_of(worker.task))
                worker.process.kill()
                yield self._replace(worker, f"decoder timed out after {limit:.0f} s")

    def _read(self, worker: _Worker) -> Iterator[FileEvent | Probed]:
        try:
            event: WorkerEvent = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            yield self._replace(worker, self._crash_reason(worker))
            return
        worker.silent = 0.0
        if isinstance(event, Ready):
            worker.ready = True
            return
        task = worker.task
        if isinstance(task, Path):  # a probe's answer, or why it failed
            worker.task = None
            if isinstance(event, Probed | Failed):
                yield Probed(task, event.result if isinstance(event, Probed) else event.reason)
            return
        if isinstance(event, Idle | Probed):  # never sent about a file being decoded
            return
        if isinstance(event, Done | Failed):
            worker.task = None
        yield replace(event, media=task.media) if task is not None else event

    def _crash_reason(self, worker: _Worker) -> str:
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        if not worker.ready and code is not None and code > 0:
            # A spawned worker imports the parent's main module first; a script that calls run_ingest at top
            # level runs it again there and exits. Every worker would: no file is at fault, the run cannot work.
            raise UsageError(
                f"a decode worker process exited while starting (status {code}): in a script, call run_ingest "
                'under `if __name__ == "__main__":`',
                hint="decode workers are started with multiprocessing's spawn and import the main script first; "
                "the worker's own error is printed above",
            )
        if code is not None and code < 0:
            return f"decoder crashed ({_signal_name(code)})"
        return f"decoder exited unexpectedly (status {code})"

    def _replace(self, worker: _Worker, reason: str) -> Failed | Probed:
        task = worker.task
        index = self._workers.index(worker)
        worker.task = None
        worker.stop(kill=True)
        self._workers[index] = _Worker(self._ctx)
        if isinstance(task, Path):
            return Probed(task, reason)
        return Failed(task.media if task is not None else None, reason)


def _media_of(task: DecodeTask | Path | None) -> MediaFile | None:
    return task.media if isinstance(task, DecodeTask) else None
