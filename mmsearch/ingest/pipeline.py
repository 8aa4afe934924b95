"""The work of one `index` run on new files: decode workers -> (speech thread) -> cross-file embedding -> store.

Workers decode files in parallel and stream their frames here; frames of several files share an embedding
batch (a folder of short clips fills batches as well as one long video). A file is stored when its decode is
done, all its frames are embedded and its speech is transcribed; the writer commits every `commit_interval`
seconds, so an interrupted run keeps every finished file.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..index.facade import Index
from ..models.clip import Embedder
from ..paths import display_path
from ..types import FileFailure, FrameBatch, IngestSummary, MediaFile, Segment, SegmentKind, SpeechSegment
from .dedupe import Dedupe
from .extras import ExtraStages
from .speech import SpeechThread
from .transcribe import SUBTITLES_LABEL, Transcriber
from .workers import Audio, DecodeSettings, DecodeTask, Done, Failed, FileEvent, Frames, Idle, Image, Shots, WorkerPool


class Reporter(Protocol):
    def begin(self) -> None: ...  # the options are valid: the run starts (nothing was created before)
    def planned(self, files: int, media_seconds: float) -> None: ...
    def started(self, path: str) -> None: ...
    def advanced(self, media_seconds: float) -> None: ...
    def file_done(self, path: str) -> None: ...
    def file_failed(self, failure: FileFailure) -> None: ...
    def note(self, path: str, message: str) -> None: ...
    def interrupted(self) -> None: ...


@dataclass
class _FileState:
    sha: str
    segments: list[Segment] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    shots: list[tuple[float, float]] = field(default_factory=list)
    decoded: bool = False
    frames_waiting: int = 0  # sampled frames decoded but not yet embedded
    windows_waiting: int = 0  # audio windows handed to the speech thread, not yet transcribed
    planned: float = 0.0  # media seconds the progress display expects from this file
    progressed: float = 0.0
    weight: float = 1.0  # media seconds per stream second: 0.5 for a video whose frames and audio both advance it
    started: bool = False  # the progress display named it as the file being worked on


@dataclass(frozen=True)
class PipelineConfig:
    """What a run's options mean for the pipeline, built once when they are validated (`IngestOptions.validate`)."""

    decode: DecodeSettings  # fps, batch size, resolved shot detector and decoder: sent with every file
    commit_interval: float
    dedupe: bool = True  # inside a shot, frames that look like the last embedded one are not embedded


class Pipeline:
    def __init__(
        self,
        config: PipelineConfig,
        pool: WorkerPool,
        writer: Index,
        embedder: Embedder,
        transcriber: Transcriber | None,
        reporter: Reporter,
        summary: IngestSummary,
        *,
        extras: ExtraStages | None = None,
        shielded: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
        on_event: Callable[[FileEvent | Idle], None] | None = None,
    ) -> None:
        """`extras`: OCR, sentence text, audio windows (none by default). Storing a file (and committing) runs in
        `shielded()`: Ctrl-C never leaves half a file in the catalog. `on_event` is called with every worker event
        before it is handled (tests use it to act at a given moment of a file)."""
        self.config = config
        self.pool = pool
        self.writer = writer
        self.embedder = embedder
        self.transcriber = transcriber
        self.reporter = reporter
        self.summary = summary
        self.times = summary.times
        self._files: dict[Path, _FileState] = {}
        self._frames: list[tuple[MediaFile, Segment, np.ndarray]] = []  # waiting for a full embedding batch
        self._last_commit = time.perf_counter()
        self._speech: SpeechThread | None = None
        self._dedupe = Dedupe()
        self.extras = extras if extras is not None else ExtraStages(summary.times)
        self.shielded = shielded
        self.on_event = on_event

    def run(self, work: list[tuple[MediaFile, str]]) -> None:
        for media, sha in work:
            planned = self._stream_seconds(media)
            # Frames and audio both advance a video with sound: each counts for half of its media seconds.
            weight = (media.duration or 0.0) / planned if planned else 0.0
            self._files[media.path] = _FileState(sha, planned=planned, weight=weight)
        if self.transcriber is not None and any(self._may_want_audio(m) for m, _ in work):
            self._speech = SpeechThread(self.transcriber, self.times)
        # Files are claimed one at a time as workers free up (with several machines, each takes what it wins).
        tasks = (self._task(media) for media in self.writer.work.claimed([m for m, _ in work]))
        try:
            t0 = time.perf_counter()
            for event in self.pool.decode(tasks):
                self.times.decode += time.perf_counter() - t0
                if self.on_event is not None:
                    self.on_event(event)
                self._handle(event)
                self._collect_speech(block=False)
                t0 = time.perf_counter()
            self._flush_frames()
            while any(s.windows_waiting for s in self._files.values()):
                self._collect_speech(block=True)
        except BaseException:  # Ctrl-C above all: leave Whisper's chunk under way instead of waiting for it
            if self._speech is not None:
                self._speech.abandon()
            raise
        if self._speech is not None:
            self._speech.stop()

    def media_seconds(self, work: list[tuple[MediaFile, str]]) -> float:
        """What the progress display counts: each file's media seconds once (a video with sound is not counted
        twice although its frames and its audio both advance it), for files with something to sample or hear."""
        return sum((media.duration or 0.0) for media, _ in work if self._stream_seconds(media))

    def _stream_seconds(self, media: MediaFile) -> float:
        """Seconds of frames to sample plus seconds of audio to transcribe or embed."""
        seconds = media.duration or 0.0
        return (seconds if media.kind.value == "video" else 0.0) + (seconds if self._may_want_audio(media) else 0.0)

    def _may_want_audio(self, media: MediaFile) -> bool:
        """Before its subtitles are read (planning): whether the file's audio may be decoded."""
        return media.has_audio and (self.transcriber is not None or self.extras.wants_audio)

    def _wants_audio(self, media: MediaFile) -> bool:
        return media.has_audio and (self._transcribes(media) or self.extras.wants_audio)

    def _transcribes(self, media: MediaFile) -> bool:
        """Whisper hears the file unless there is none, or its subtitles stand in (`--asr auto`)."""
        if self.transcriber is None:
            return False
        options = self.transcriber.options
        return not self.extras.subtitles_cover(media, options.when, options.language)

    def _task(self, media: MediaFile) -> DecodeTask:
        return DecodeTask(media, self.config.decode, self._wants_audio(media))

    def _handle(self, event: FileEvent | Idle) -> None:
        if isinstance(event, Idle):
            self._flush_frames()
            return
        media = event.media
        if media is None or media.path not in self._files:
            return
        state = self._files[media.path]
        if not state.started:
            state.started = True
            self.reporter.started(display_path(media.path))
        match event:
            case Failed(reason=reason):
                self._fail(media, reason)
            case Frames(batch=batch):
                self._take_frames(state, batch)
            case Image(array=array):
                self.extras.observe_image(media, array)
                self._embed_now(state, [Segment(SegmentKind.IMAGE, None, None)], self.embedder.embed_images, [array])
            case Shots(shots=shots, seconds=seconds):  # seconds the worker spent detecting (beside decoding)
                state.shots = list(shots)
                self.times.shots += seconds
            case Audio(clip=clip):
                self.extras.observe(media, None, clip)
                if self._speech is not None and self._transcribes(media):
                    state.windows_waiting += 1
                    self._speech.submit(clip)
            case Done():
                state.decoded = True
        self._finish_if_complete(media)

    def _take_frames(self, state: _FileState, batch: FrameBatch) -> None:
        media = batch.file
        self.extras.observe(media, batch)
        end_cap = media.end or float("inf")  # times are presentation times: the file ends at start_time + duration
        segments = [Segment(SegmentKind.FRAME, float(t), float(min(t + batch.interval, end_cap))) for t in batch.times]
        frames = list(batch.frames)
        if self.config.dedupe:
            # Shots arrive after the frames (one pass feeds both), so dedupe tells shots apart by the picture alone.
            segments, frames = self._dedupe.keep(batch, segments, state.shots)
        for frame, segment in zip(frames, segments, strict=True):
            self._frames.append((media, segment, frame))
        state.frames_waiting += len(segments)
        if batch.truncated_at is not None:
            self.reporter.note(
                display_path(media.path),
                f"truncated or corrupt after {batch.truncated_at:.1f} s of {media.duration or 0:.1f} s; "
                "indexed what decodes",
            )
        while len(self._frames) >= self.config.decode.batch_size:
            self._flush_frames(self.config.decode.batch_size)

    def _flush_frames(self, count: int | None = None) -> None:
        """Embed up to `count` waiting frames, of any files, in one batch."""
        if not self._frames:
            return
        take, self._frames = self._frames[: count or len(self._frames)], self._frames[count or len(self._frames) :]
        t0 = time.perf_counter()
        vectors = self.embedder.embed_images([f for _, _, f in take])
        self.times.embed += time.perf_counter() - t0
        for row, (media, segment, _) in enumerate(take):
            state = self._files.get(media.path)
            if state is None:  # failed meanwhile
                continue
            state.segments.append(segment)
            state.vectors.append(vectors[row : row + 1])
            state.frames_waiting -= 1
            self._advance(state, (segment.end or 0.0) - (segment.start or 0.0))
        for media in {m.path: m for m, _, _ in take}.values():
            self._finish_if_complete(media)

    def _collect_speech(self, block: bool) -> None:
        if self._speech is None:
            return
        while True:
            try:
                result = self._speech.results.get(timeout=0.1) if block else self._speech.results.get_nowait()
            except Exception:  # queue.Empty
                return
            state = self._files.get(result.media.path)
            if state is None:
                continue
            state.windows_waiting -= 1
            self._advance(state, result.seconds)
            if result.error is not None:
                self._fail(result.media, f"speech recognition failed: {result.error}")
                continue
            self._add_speech(state, result.segments)
            self._finish_if_complete(result.media)
            block = False

    def _add_speech(self, state: _FileState, speech: list[SpeechSegment]) -> None:
        if speech:
            segments = [Segment(SegmentKind.SPEECH, s.start, s.end, s.text, s.channel, s.language) for s in speech]
            self._embed_now(state, segments, self.embedder.embed_texts, [s.text for s in speech])

    def _embed_now(
        self, state: _FileState, segments: list[Segment], embed: Callable[[Any], np.ndarray], data: Any
    ) -> None:
        t0 = time.perf_counter()
        vectors = embed(data)
        self.times.embed += time.perf_counter() - t0
        state.segments.extend(segments)
        state.vectors.append(vectors)

    def _advance(self, state: _FileState, seconds: float) -> None:
        seconds = max(0.0, min(seconds, state.planned - state.progressed))
        state.progressed += seconds
        self.reporter.advanced(seconds * state.weight)

    def _fail(self, media: MediaFile, reason: str) -> None:
        state = self._files.pop(media.path, None)
        self.extras.drop(media)
        self._frames = [f for f in self._frames if f[0].path != media.path]
        if not os.path.lexists(media.path):
            # Deleted while it was being read: not a failure of its content (which would be remembered under its
            # hash and refused when it comes back), just a file that is not there any more.
            self.reporter.note(display_path(media.path), "vanished while it was being indexed: skipped")
            return
        failure = FileFailure(display_path(media.path), reason)
        self.summary.failed.append(failure)
        self.reporter.file_failed(failure)
        if state is not None:
            self.writer.record_failure(media.path, state.sha, reason)

    def _finish_if_complete(self, media: MediaFile) -> None:
        state = self._files.get(media.path)
        if state is None or not state.decoded or state.frames_waiting or state.windows_waiting:
            return
        del self._files[media.path]
        self._advance(state, state.planned)  # a cut-off file ends before its container duration
        self._store(media, state)

    def _store(self, media: MediaFile, state: _FileState) -> None:
        with self.shielded():
            self._store_now(media, state)
        self.reporter.file_done(display_path(media.path))

    def _store_now(self, media: MediaFile, state: _FileState) -> None:
        t0 = time.perf_counter()
        order = sorted(
            range(len(state.segments)), key=lambda i: (state.segments[i].kind.value, state.segments[i].start or 0.0)
        )
        stacked = np.concatenate(state.vectors) if state.vectors else np.zeros((0, self.embedder.dim), np.float32)
        segments = [state.segments[i] for i in order]
        stacked = stacked[order] if len(order) else stacked
        asr = None
        if media.has_audio and self.transcriber is not None:
            asr = self.transcriber.options.label if self._transcribes(media) else SUBTITLES_LABEL
        extra = self.extras.finish(media, segments)
        self.writer.add_file(
            media, state.sha, segments + extra.segments, stacked, state.shots, asr, extra.spaces, extra.faces
        )
        self.writer.clear_failure(media.path)
        self.summary.embedded += len(segments) + len(extra.segments)
        self.summary.new_files += 1
        self.summary.media_seconds += media.duration or 0.0
        if time.perf_counter() - self._last_commit >= self.config.commit_interval:
            self.writer.commit()
            self._last_commit = time.perf_counter()
        self.times.store += time.perf_counter() - t0
