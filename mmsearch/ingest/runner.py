"""The ingest runner: discover → plan → (decode ∥ transcribe) → embed → store, timing every stage.

Decoding and transcription run in a producer thread that stays a few batches ahead, so the next batch is
decoded while the current one is embedded. A file enters the catalog only when all its segments are embedded,
and the writer commits every `commit_interval` seconds, so an interrupted run keeps every finished file.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import UsageError
from ..index.shared import check_shared_options, shared_store_config
from ..index.writer import IndexWriter
from ..models.clip import Embedder
from ..models.hub import check_device
from ..models.precision import EmbedChoice, runtime_record
from ..models.registry import load_embedder
from ..models.spec import DEFAULT_MODEL, parse_model_spec
from ..paths import display_path, path_key
from ..stores.protocol import StoreConfig
from ..types import (
    AudioClip,
    FileFailure,
    FrameBatch,
    IngestSummary,
    MediaFile,
    MediaKind,
    Segment,
    SegmentKind,
    SpeechSegment,
    StageTimes,
)
from .decode import load_audio, load_image
from .decoders import frame_decoder, resolve_decoder
from .dedupe import Dedupe
from .discover import discover
from .extras import ExtrasOptions, ExtraStages, backfill_text
from .plan import Plan, make_plan
from .shots import detect_shots
from .transcribe import AsrOptions, Transcriber, load_transcriber

log = logging.getLogger(__name__)

# Batches the decoder may run ahead of the embedder; bounds memory to a few batches of frames.
PREFETCH_BATCHES = 4


@dataclass(frozen=True)
class IngestOptions:
    paths: tuple[Path, ...]
    index_dir: Path
    model: str = DEFAULT_MODEL
    fps: float = 1.0
    asr: AsrOptions | None = field(default_factory=AsrOptions)
    batch_size: int = 32
    device: str = "auto"
    commit_interval: float = 30.0
    detect_shots: bool = True  # a second, low-resolution decode of each video; off: hits fall back to frame runs
    decoder: str = "auto"  # frame decoder (ingest/decoders.py): auto, decord or pyav
    store: StoreConfig = field(default_factory=StoreConfig)  # backend, uri, collection, index type
    embed: EmbedChoice = field(default_factory=EmbedChoice)  # --runtime / --precision of the CLIP towers
    dedupe: bool = True  # skip frames that look like the last embedded one of their shot (ingest/dedupe.py)
    catalog: str | None = None  # postgresql://: a shared catalog, this run is one of several workers
    claim_ttl: float | None = None  # seconds a dead worker's claimed files wait before others take them
    extras: ExtrasOptions = field(default_factory=ExtrasOptions)  # OCR, sentence text, audio windows (extras.py)

    def validate(self) -> None:
        if not self.paths:
            raise UsageError("give at least one file or folder to index")
        if not 0 < self.fps <= 60:
            raise UsageError(f"--fps must be in (0, 60], got {self.fps}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        check_device(self.device)
        resolve_decoder(self.decoder)
        self.store.validate()
        self.embed.validate()
        if self.catalog is not None:
            check_shared_options(self.catalog, self.store)
        parse_model_spec(self.model)
        self.extras.validate()


class Reporter(Protocol):
    def planned(self, files: int, media_seconds: float) -> None: ...
    def advanced(self, media_seconds: float) -> None: ...
    def file_done(self, path: str) -> None: ...
    def file_failed(self, failure: FileFailure) -> None: ...


class SilentReporter:
    def planned(self, files: int, media_seconds: float) -> None: ...
    def advanced(self, media_seconds: float) -> None: ...
    def file_done(self, path: str) -> None: ...
    def file_failed(self, failure: FileFailure) -> None: ...


@dataclass(frozen=True)
class _Work:
    """One item from the producer: frames, speech, an image, or the end (or failure) of a file."""

    media: MediaFile
    frames: FrameBatch | None = None
    speech: list[SpeechSegment] | None = None
    image: np.ndarray | None = None
    shots: list[tuple[float, float]] | None = None
    clip: AudioClip | None = None  # the soundtrack, for the audio windows stage
    done: bool = False
    error: str | None = None


def run_ingest(
    options: IngestOptions,
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
    transcriber: Transcriber | None = None,
) -> IngestSummary:
    options.validate()
    reporter = reporter or SilentReporter()
    spec = parse_model_spec(options.model)
    started = time.perf_counter()
    summary = IngestSummary(index=display_path(options.index_dir))
    writer = IndexWriter(
        options.index_dir,
        spec.raw,
        spec.untrained,
        options.device,  # type: ignore[arg-type]
        shared_store_config(options.catalog, options.store),
        options.catalog,
        options.claim_ttl,
    )
    writer.extra_manifest = {"fps": str(options.fps)}
    models = _Models(spec.raw, options, embedder, transcriber, summary.times)
    with writer:
        writer.open()
        with writer.work.exclusive():  # several workers: one at a time creates, plans and queues
            # Models load only when there is work: an unchanged rerun never pays for them.
            writer.ensure_store(lambda: models.embedder().dim)
            t0 = time.perf_counter()
            found = discover(options.paths)
            plan = make_plan(writer._cat(), found.files, found.roots, want_speech=options.asr is not None)
            summary.times.discover = time.perf_counter() - t0
            _apply_cheap_changes(writer, plan, summary)
            backfill_text(writer, options.extras, summary.times)
            if options.catalog:  # the next worker plans from what this one changed
                writer.commit()
            writer.work.enqueue(plan.new)
        _record_failures([*found.failed, *plan.failed], summary, reporter)
        if plan.new:
            needs_asr = any(m.has_audio for m, _ in plan.new)
            runner = _Pipeline(options, writer, models.embedder(), models.transcriber(needs_asr), reporter, summary)
            runner.extras = ExtraStages.load(options.extras, summary.times)
            for name, (model, dim) in runner.extras.spaces.items():
                writer.use_space(name, model, dim)
            reporter.planned(len(plan.new), sum(m.duration or 0.0 for m, _ in plan.new))
            runner.run(plan.new)
            # Which device embedded is part of what an index is (fp16 on CUDA, fp32 elsewhere); test embedders
            # have no device attribute and run on the CPU.
            summary.device = str(getattr(runner.embedder, "device", "cpu"))
            summary.decoder = resolve_decoder(options.decoder)
            writer._cat().set_manifest({"embed_device": summary.device})
            writer._cat().set_manifest(runtime_record(models.embedder()))
        writer.commit()
        log.info("coordination: %.2f s waiting for other workers (locks, claims)", writer.work.waited)
        summary.files = writer._cat().file_count()
        summary.segments = sum(writer._cat().counts().values())
    summary.times.total = time.perf_counter() - started
    return summary


class _Models:
    """Embedder and transcriber, loaded on first use (and then kept)."""

    def __init__(
        self,
        spec: str,
        options: IngestOptions,
        embedder: Embedder | None,
        transcriber: Transcriber | None,
        times: StageTimes,
    ) -> None:
        self._times = times
        self._spec = spec
        self._options = options
        self._embedder = embedder
        self._transcriber = transcriber

    def embedder(self) -> Embedder:
        if self._embedder is None:
            t0 = time.perf_counter()
            self._embedder = load_embedder(self._spec, self._options.device, self._options.embed)
            self._times.load += time.perf_counter() - t0
        return self._embedder

    def transcriber(self, needed: bool) -> Transcriber | None:
        if self._transcriber is None and needed and self._options.asr is not None:
            t0 = time.perf_counter()
            self._transcriber = load_transcriber(self._options.asr)
            self._times.load += time.perf_counter() - t0
        return self._transcriber


def _record_failures(failures: list[FileFailure], summary: IngestSummary, reporter: Reporter) -> None:
    for failure in failures:
        summary.failed.append(failure)
        reporter.file_failed(failure)


def _apply_cheap_changes(writer: IndexWriter, plan: Plan, summary: IngestSummary) -> None:
    """Moves, touches, copies and removals: catalog and vector bookkeeping, no decoding or embedding."""
    catalog = writer._cat()
    for rec, media in plan.touched:
        catalog.touch_file(rec.id, media.mtime_ns)
    # Removals go first, because a file moved or copied onto an indexed path replaces that path's record
    # (`mv a b` over an indexed b). A copy whose source is removed reads the source's vectors beforehand.
    removed_ids = {r.id for r in plan.removed}
    early = {m: writer.file_content(src) for m, _sha, src in plan.copies if src.id in removed_ids}
    for rec in plan.removed:
        writer.remove_file(rec)
    for rec, media in plan.moved:
        catalog.move_file(rec.id, media.path, media.mtime_ns)
    for media, sha, source in plan.copies:
        content = early.pop(media) if media in early else writer.file_content(source)
        writer.add_file(media, sha, content.segments, content.vectors, content.shots, content.asr, content.spaces)
    summary.unchanged_files = len(plan.unchanged) + len(plan.touched) + len(plan.moved) + len(plan.copies)
    replaced = {path_key(m.path) for m, _ in plan.new}
    replaced |= {path_key(m.path) for _, m in plan.moved} | {path_key(m.path) for m, _, _ in plan.copies}
    summary.removed_files = len([r for r in plan.removed if r.raw_path not in replaced])


class _Pipeline:
    def __init__(
        self,
        options: IngestOptions,
        writer: IndexWriter,
        embedder: Embedder,
        transcriber: Transcriber | None,
        reporter: Reporter,
        summary: IngestSummary,
    ) -> None:
        self.options = options
        self.writer = writer
        self.embedder = embedder
        self.transcriber = transcriber
        self.reporter = reporter
        self.summary = summary
        self.times: StageTimes = summary.times
        self._pending: dict[Path, tuple[list[Segment], list[np.ndarray]]] = {}
        self._shots: dict[Path, list[tuple[float, float]]] = {}
        self._dedupe = Dedupe()
        self._last_commit = time.perf_counter()
        self._iter_frames = frame_decoder(options.decoder)
        self.extras = ExtraStages(summary.times)

    def run(self, work: list[tuple[MediaFile, str]]) -> None:
        hashes = {media.path: sha for media, sha in work}
        items: queue.Queue[_Work | None] = queue.Queue(maxsize=PREFETCH_BATCHES)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce,
            args=([m for m, _ in work], items, stop),
            name="mmsearch-decode",
            daemon=True,
        )
        producer.start()
        try:
            while (item := items.get()) is not None:
                self._consume(item, hashes[item.media.path])
        finally:
            stop.set()
            while producer.is_alive():  # drain so a blocked put() can see `stop`
                with contextlib.suppress(queue.Empty):
                    items.get(timeout=0.1)
            producer.join()

    # -- producer side (decode + transcribe) -----------------------------------------------------------

    def _produce(self, files: list[MediaFile], items: queue.Queue[_Work | None], stop: threading.Event) -> None:
        try:
            for media in self.writer.work.claimed(files):
                if stop.is_set():
                    return
                try:
                    for work in self._decode_file(media):
                        items.put(work)
                        if stop.is_set():
                            return
                except Exception as e:  # one bad file must never stop the rest; the reason is reported
                    items.put(_Work(media, error=_reason(e)))
                    continue
                items.put(_Work(media, done=True))
        finally:
            items.put(None)

    def _decode_file(self, media: MediaFile) -> Iterator[_Work]:
        if media.kind is MediaKind.IMAGE:
            t0 = time.perf_counter()
            image = load_image(media.path)
            self.times.decode += time.perf_counter() - t0
            yield _Work(media, image=image)
            return
        if media.kind is MediaKind.VIDEO:
            if self.options.detect_shots:
                yield _Work(media, shots=self._detect_shots(media))
            t0 = time.perf_counter()
            for batch in self._iter_frames(media, self.options.fps, self.options.batch_size):
                self.times.decode += time.perf_counter() - t0
                yield _Work(media, frames=batch)
                t0 = time.perf_counter()
        if media.has_audio and (self.transcriber is not None or self.extras.wants_audio):
            clip = self._load_audio(media)
            yield _Work(media, speech=self._transcribe(clip), clip=clip if self.extras.wants_audio else None)

    def _detect_shots(self, media: MediaFile) -> list[tuple[float, float]]:
        t0 = time.perf_counter()
        try:
            return detect_shots(media.path, media.duration)
        except Exception as e:  # no shots is a usable state: visual hits then fall back to frame runs
            log.warning("shot detection failed for %s: %s", display_path(media.path), _reason(e))
            return []
        finally:
            self.times.shots += time.perf_counter() - t0

    def _load_audio(self, media: MediaFile) -> AudioClip | None:
        t0 = time.perf_counter()
        clip = load_audio(media)
        self.times.decode += time.perf_counter() - t0
        return clip

    def _transcribe(self, clip: AudioClip | None) -> list[SpeechSegment]:
        if clip is None or self.transcriber is None:
            return []
        t0 = time.perf_counter()
        segments = self.transcriber.transcribe(clip)
        self.times.transcribe += time.perf_counter() - t0
        return segments

    # -- consumer side (embed + store) -----------------------------------------------------------------

    def _consume(self, item: _Work, sha: str) -> None:
        media = item.media
        segments, vectors = self._pending.setdefault(media.path, ([], []))
        if item.error is not None:
            self._pending.pop(media.path, None)
            self._shots.pop(media.path, None)
            self.extras.drop(media)
            failure = FileFailure(display_path(media.path), item.error)
            self.summary.failed.append(failure)
            self.reporter.file_failed(failure)
            return
        if item.shots is not None:
            self._shots[media.path] = item.shots
        t0 = time.perf_counter()
        new_segments, new_vectors = self._embed(item)
        self.times.embed += time.perf_counter() - t0
        segments.extend(new_segments)
        self.extras.observe(media, item.frames, item.clip)
        if len(new_vectors):
            vectors.append(new_vectors)
        if item.frames is not None and len(item.frames.times):
            self.reporter.advanced(min(len(item.frames.times) * item.frames.interval, media.duration or 0.0))
        if item.done:
            self._store(media, sha)

    def _embed(self, item: _Work) -> tuple[list[Segment], np.ndarray]:
        if item.frames is not None and (len(item.frames.times) or item.frames.last):
            batch = item.frames
            end_cap = batch.file.duration or float("inf")
            segs = [Segment(SegmentKind.FRAME, float(t), float(min(t + batch.interval, end_cap))) for t in batch.times]
            frames = list(batch.frames)
            if self.options.dedupe:
                segs, frames = self._dedupe.keep(batch, segs, self._shots.get(batch.file.path, []))
            return segs, self.embedder.embed_images(frames)
        if item.speech:
            segs = [Segment(SegmentKind.SPEECH, s.start, s.end, s.text) for s in item.speech]
            return segs, self.embedder.embed_texts([s.text for s in item.speech])
        if item.image is not None:
            return [Segment(SegmentKind.IMAGE, None, None)], self.embedder.embed_images([item.image])
        return [], np.zeros((0, self.embedder.dim), np.float32)

    def _store(self, media: MediaFile, sha: str) -> None:
        segments, vectors = self._pending.pop(media.path)
        t0 = time.perf_counter()
        stacked = np.concatenate(vectors) if vectors else np.zeros((0, self.embedder.dim), np.float32)
        asr = self.transcriber.options.label if media.has_audio and self.transcriber is not None else None
        extra = self.extras.finish(media, segments)
        shots = self._shots.pop(media.path, [])
        self.writer.add_file(media, sha, segments + extra.segments, stacked, shots, asr, extra.spaces)
        self.summary.embedded += len(segments) + len(extra.segments)
        self.summary.new_files += 1
        self.summary.media_seconds += media.duration or 0.0
        if time.perf_counter() - self._last_commit >= self.options.commit_interval:
            self.writer.commit()
            self._last_commit = time.perf_counter()
        self.times.store += time.perf_counter() - t0
        self.reporter.file_done(display_path(media.path))


def _reason(e: BaseException) -> str:
    message = getattr(e, "message", None) or str(e).strip()
    return message.splitlines()[0][:300] if message else type(e).__name__
