"""The ingest runner: discover → plan → (decode workers ∥ transcribe) → embed → store, timing every stage.

Probing and decoding run in worker processes (`workers.py`), the embedding and storing in `pipeline.py`. A file
enters the catalog only when all its segments are embedded, and the writer commits every `commit_interval`
seconds, so an interrupted run keeps every finished file. Files that failed are remembered with their content
hash and skipped until they change (or `retry_failed`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..index.facade import Index
from ..index.location import IndexLocation
from ..index.shared import check_shared_options, shared_store_config
from ..models.clip import Embedder
from ..models.hub import check_device
from ..models.precision import EmbedChoice, runtime_record
from ..models.registry import load_embedder
from ..models.spec import DEFAULT_MODEL, parse_model_spec
from ..paths import display_path, path_key
from ..stores.protocol import StoreConfig, vector_device
from ..stores.registry import check_store_options
from ..types import FileFailure, IngestSummary, StageTimes
from .decode import AUDIO_WINDOW_SECONDS
from .decoders import resolve_decoder
from .discover import discover
from .extras import ExtrasOptions, ExtraStages, backfill_text
from .interrupts import Interrupts
from .pipeline import Pipeline, PipelineConfig, Reporter
from .plan import Plan, make_plan
from .shots import resolve_shots
from .transcribe import DEFAULT_ASR_BACKEND, DEFAULT_ASR_MODEL, AsrOptions, Transcriber, load_transcriber
from .workers import Budget, DecodeSettings, FileEvent, Idle, WorkerPool, default_workers

log = logging.getLogger(__name__)


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
    detect_shots: bool = True  # False (--no-shots) is shots="none": visual hits fall back to frame runs
    store: StoreConfig = field(default_factory=StoreConfig)  # backend, uri, collection, index type
    shots: str = "auto"  # transnetv2 (default when installed), adaptive (PySceneDetect) or none
    workers: int | None = None  # decode processes; None: what the cores and memory allow
    retry_failed: bool = False  # decode again files that failed in an earlier run although unchanged
    budget: Budget = field(default_factory=Budget)  # how long a worker may be silent before it is killed
    audio_window: float = AUDIO_WINDOW_SECONDS
    decoder: str = "auto"  # frame decoder (ingest/decoders.py): auto (PyAV), pyav or decord
    embed: EmbedChoice = field(default_factory=EmbedChoice)  # --runtime / --precision of the CLIP towers
    dedupe: bool = True  # skip frames that look like the last embedded one of their shot (ingest/dedupe.py)
    catalog: str | None = None  # postgresql://: a shared catalog, this run is one of several workers
    claim_ttl: float | None = None  # seconds a dead worker's claimed files wait before others take them
    extras: ExtrasOptions = field(default_factory=ExtrasOptions)  # OCR, sentence text, audio windows (extras.py)

    def validate(self) -> PipelineConfig:
        """Everything that can be refused before anything is created (no index directory, no model load); returns
        what the pipeline runs with, the shot detector and decoder resolved."""
        if not self.paths:
            raise UsageError("give at least one file or folder to index")
        missing = [p for p in self.paths if not os.path.lexists(p)]
        if missing:
            raise UsageError(f"no such file or directory: {display_path(missing[0])}", hint="check the path")
        if self.index_dir.exists() and not self.index_dir.is_dir():
            raise UsageError(
                f"--index {display_path(self.index_dir)} is a file, not a directory", hint="name a directory"
            )
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        check_device(self.device)
        if self.device in ("gpu", "cuda"):
            _require_gpu(self.device)
        shots = "none" if not self.detect_shots else resolve_shots(self.shots)
        if not 0 < self.fps <= 60:
            raise UsageError(f"--fps must be in (0, 60], got {self.fps}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        decoder = resolve_decoder(self.decoder)
        check_store_options(self.store)
        self.embed.validate()
        if self.catalog is not None:
            check_shared_options(self.catalog, self.store)
        parse_model_spec(self.model)
        self.extras.validate()
        decode = DecodeSettings(self.fps, self.batch_size, shots, self.audio_window, decoder)
        return PipelineConfig(decode, self.commit_interval, self.dedupe)


def _require_gpu(device: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise UsageError(
            f"--device {device}: there is no GPU here (CUDA sees no device)", hint="use --device cpu or auto"
        )


class SilentReporter:
    def begin(self) -> None: ...
    def planned(self, files: int, media_seconds: float) -> None: ...
    def started(self, path: str) -> None: ...
    def advanced(self, media_seconds: float) -> None: ...
    def file_done(self, path: str) -> None: ...
    def file_failed(self, failure: FileFailure) -> None: ...
    def note(self, path: str, message: str) -> None: ...
    def interrupted(self) -> None: ...


def run_ingest(
    options: IngestOptions,
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
    transcriber: Transcriber | None = None,
    on_event: Callable[[FileEvent | Idle], None] | None = None,
) -> IngestSummary:
    """Index `options.paths`; `on_event` sees every decode worker event before the pipeline (tests act with it)."""
    config = options.validate()
    reporter = reporter or SilentReporter()
    reporter.begin()
    spec = parse_model_spec(options.model)
    started = time.perf_counter()
    summary = IngestSummary(index=display_path(options.index_dir))
    models = _Models(spec.raw, options, embedder, transcriber, summary.times)
    pool = WorkerPool(options.workers or default_workers(), options.budget)
    # Outermost, so that a second Ctrl-C cannot cut the final commit (in the writer's exit) short either.
    with Interrupts(reporter).installed() as interrupts, pool:
        writer = Index.write(
            IndexLocation(options.index_dir, options.catalog),
            spec.raw,
            spec.untrained,
            vector_device(options.device),
            shared_store_config(options.catalog, options.store),
            options.claim_ttl,
        )
        writer.extra_manifest = {"fps": str(options.fps), **_asr_manifest(options.asr)}
        with writer:
            _index_files(config, options, writer, models, pool, reporter, summary, on_event, interrupts)
    summary.times.total = time.perf_counter() - started
    return summary


def _index_files(
    config: PipelineConfig,
    options: IngestOptions,
    writer: Index,
    models: _Models,
    pool: WorkerPool,
    reporter: Reporter,
    summary: IngestSummary,
    on_event: Callable[[FileEvent | Idle], None] | None,
    interrupts: Interrupts,
) -> None:
    plan, failed = _plan(options, writer, models, pool, summary)
    _record_failures(failed, summary, reporter)
    _skip_failed_before(writer, plan, options.retry_failed, summary, reporter)
    if plan.new:
        _run_pipeline(config, options, plan, writer, models, pool, reporter, summary, on_event, interrupts)
    with interrupts.shielded():
        writer.assign_people()  # the face tracks of this run (and of copies) join people or become new ones
        writer.commit()
    log.info("coordination: %.2f s waiting for other workers (locks, claims)", writer.work.waited)
    summary.files = writer.file_count()
    summary.segments = sum(writer.segment_counts().values())


def _plan(
    options: IngestOptions, writer: Index, models: _Models, pool: WorkerPool, summary: IngestSummary
) -> tuple[Plan, list[FileFailure]]:
    """Create the index if needed, find what changed, apply the cheap changes and queue the new files."""
    with writer.exclusive():  # several workers: one at a time creates, plans and queues
        # Models load only when there is work: an unchanged rerun never pays for them.
        writer.open_vectors(lambda: models.embedder().dim)
        t0 = time.perf_counter()
        found = discover(options.paths, pool.probe)
        plan = make_plan(writer.files(), found.files, found.roots, want_speech=options.asr is not None)
        summary.times.discover = time.perf_counter() - t0
        _apply_cheap_changes(writer, plan, summary)
        backfill_text(writer, options.extras, summary.times)
        if options.catalog:  # the next worker plans from what this one changed
            writer.commit()
        writer.work.enqueue(plan.new)
    return plan, [*found.failed, *plan.failed]


def _run_pipeline(
    config: PipelineConfig,
    options: IngestOptions,
    plan: Plan,
    writer: Index,
    models: _Models,
    pool: WorkerPool,
    reporter: Reporter,
    summary: IngestSummary,
    on_event: Callable[[FileEvent | Idle], None] | None,
    interrupts: Interrupts,
) -> None:
    needs_asr = any(m.has_audio for m, _ in plan.new)
    pipeline = Pipeline(
        config, pool, writer, models.embedder(), models.transcriber(needs_asr), reporter, summary,
        extras=ExtraStages.load(options.extras, summary.times), shielded=interrupts.shielded, on_event=on_event,
    )  # fmt: skip
    for name, (model, dim) in pipeline.extras.spaces.items():
        writer.use_space(name, model, dim)
    reporter.planned(len(plan.new), pipeline.media_seconds(plan.new))
    pipeline.run(plan.new)
    # Which device embedded is part of what an index is (fp16 on CUDA, fp32 elsewhere); test embedders have no
    # device attribute and run on the CPU.
    summary.device = str(getattr(pipeline.embedder, "device", "cpu"))
    summary.decoder = config.decode.decoder
    writer.record({"embed_device": summary.device, **runtime_record(models.embedder())})


def remembered_asr(index_dir: Path, backend: str | None, model: str | None) -> tuple[str, str]:
    """`--asr-backend/--asr-model` if given, else what the index was built with, else the defaults."""
    saved = IndexLocation(index_dir).saved_manifest()
    if model is None and backend is None:
        backend = saved.get("asr_backend")
    return backend or DEFAULT_ASR_BACKEND, model or saved.get("asr_model") or DEFAULT_ASR_MODEL


def _asr_manifest(asr: AsrOptions | None) -> dict[str, str]:
    """The index remembers its ASR like its CLIP model, so a later `index` run uses the same one."""
    return {} if asr is None else {"asr_backend": asr.backend, "asr_model": asr.model}


def _skip_failed_before(writer: Index, plan: Plan, retry: bool, summary: IngestSummary, reporter: Reporter) -> None:
    """Files that failed in an earlier run with the same content are not decoded again (unless `retry`); they
    are still reported, so the run says the folder is not fully indexed (exit 1)."""
    failures = writer.failures()
    if retry or not failures:
        return
    keep = []
    for media, sha in plan.new:
        before = failures.get(path_key(media.path))
        if before is not None and before[1] == sha:
            reason = f"{before[2]} (in an earlier run; unchanged, not retried: --retry-failed retries)"
            _record_failures([FileFailure(display_path(media.path), reason)], summary, reporter)
            continue
        keep.append((media, sha))
    plan.new = keep


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


def _apply_cheap_changes(writer: Index, plan: Plan, summary: IngestSummary) -> None:
    """Moves, touches, copies and removals: catalog and vector bookkeeping, no decoding or embedding."""
    for rec, media in plan.touched:
        writer.touch_file(rec.id, media.mtime_ns)
    # Removals go first, because a file moved or copied onto an indexed path replaces that path's record
    # (`mv a b` over an indexed b). A copy whose source is removed reads the source's vectors beforehand.
    removed_ids = {r.id for r in plan.removed}
    early = {m: writer.file_content(src) for m, _sha, src in plan.copies if src.id in removed_ids}
    for rec in plan.removed:
        writer.remove_file(rec)
    for rec, media in plan.moved:
        writer.move_file(rec.id, media.path, media.mtime_ns)
    for media, sha, source in plan.copies:
        content = early.pop(media) if media in early else writer.file_content(source)
        writer.add_file(
            media, sha, content.segments, content.vectors, content.shots, content.asr, content.spaces, content.faces
        )
    summary.unchanged_files = len(plan.unchanged) + len(plan.touched) + len(plan.moved) + len(plan.copies)
    replaced = {path_key(m.path) for m, _ in plan.new}
    replaced |= {path_key(m.path) for _, m in plan.moved} | {path_key(m.path) for m, _, _ in plan.copies}
    summary.removed_files = len([r for r in plan.removed if r.raw_path not in replaced])


def _reason(e: BaseException) -> str:
    message = getattr(e, "message", None) or str(e).strip()
    return message.splitlines()[0][:300] if message else type(e).__name__
