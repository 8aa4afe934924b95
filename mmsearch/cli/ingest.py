"""`mmsearch index`: the options of ingest, parsed into IngestOptions, run with a progress display."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import EXIT_OK, EXIT_PARTIAL, UsageError
from ..index.location import IndexLocation
from ..index.manifest import resolve_model
from ..ingest.extras import ExtrasOptions
from ..ingest.faces import faces_installed
from ..ingest.runner import IngestOptions, remembered_asr, run_ingest
from ..ingest.transcribe import DEFAULT_ASR_BACKEND, DEFAULT_ASR_MODEL, AsrOptions
from ..models.precision import EmbedChoice
from ..models.sentence import DEFAULT_TEXT_MODEL, NO_TEXT_MODEL
from ..models.spec import parse_model_spec
from ..paths import display_path, resolve_index_dir
from ..stores.protocol import StoreConfig
from ..types import IngestSummary
from .options import (
    BackendOpt,
    CatalogOpt,
    CollectionOpt,
    DecoderOpt,
    DeviceOpt,
    IndexOpt,
    IndexTypeOpt,
    JsonOpt,
    ModelOpt,
    UriOpt,
)
from .ui import ProgressReporter, print_json, print_summary, reported_errors, warn_untrained

PathsArg = Annotated[list[Path], typer.Argument(help="Files or folders of video, audio and images.")]
FpsOpt = Annotated[float, typer.Option(help="Video frames sampled per second.")]
AsrBackendOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option(help=f"faster-whisper or openai-whisper. Default: the index's, else {DEFAULT_ASR_BACKEND}."),
]
AsrModelOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option(
        envvar="MMSEARCH_ASR_MODEL",
        help=f"Whisper model name or local path. Default: the index's, else {DEFAULT_ASR_MODEL}.",
    ),
]
NoAsrOpt = Annotated[bool, typer.Option("--no-asr", help="Skip speech transcription (same as --asr never).")]
AsrWhenOpt = Annotated[
    str,
    typer.Option(
        "--asr",
        help="auto: skip Whisper for a file whose subtitles in its spoken language cover it; always; never.",
    ),
]
LanguageOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option(help="Spoken language code (en, de, ...): forced for every file; Whisper detects it if omitted."),
]
NoSubtitlesOpt = Annotated[
    bool, typer.Option("--no-subtitles", help="Do not read subtitle files (NAME.srt, NAME.en.vtt) or streams.")
]
BatchOpt = Annotated[int, typer.Option(help="Frames embedded per batch.")]
CommitOpt = Annotated[float, typer.Option(help="Seconds between durable commits.")]
NoShotsOpt = Annotated[bool, typer.Option("--no-shots", help="Same as --shots none.")]
ShotsOpt = Annotated[
    str, typer.Option(help="Shot detector: transnetv2, adaptive (PySceneDetect) or none. Default: see README.")
]
WorkersOpt = Annotated[
    int | None,  # noqa: UP007
    typer.Option(help="Decode worker processes. Default: what the cores and memory allow."),
]
RetryOpt = Annotated[
    bool, typer.Option("--retry-failed", help="Decode again files that failed before, even if unchanged.")
]
NoOcrOpt = Annotated[
    bool, typer.Option("--no-ocr", envvar="MMSEARCH_NO_OCR", help="Skip reading text on screen (OCR).")
]
FacesOpt = Annotated[
    bool | None,  # noqa: UP007
    typer.Option(
        "--faces/--no-faces",
        envvar="MMSEARCH_FACES",
        help="Find faces and people (dlib). Default: on when the `faces` extra is installed.",
        show_default=False,
    ),
]
TextModelOpt = Annotated[
    str,
    typer.Option(
        envvar="MMSEARCH_TEXT_MODEL",
        help=f"Sentence-transformers model (name or local path) for the text channel; {NO_TEXT_MODEL}: off.",
    ),
]
AudioModelOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option(
        envvar="MMSEARCH_AUDIO_MODEL",
        help="CLAP checkpoint directory for the audio (sounds) channel; random:clap-tiny for tests. Default: off.",
    ),
]
RuntimeOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option(help="CLIP runtime: torch or onnx (CPU). Default: what --precision implies."),
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        help="auto (fp16 on CUDA; int8 ONNX on CPU if it passes its self-check, else fp32), fp32, fp16, int8."
    ),
]
DedupeOpt = Annotated[
    bool,
    typer.Option("--dedupe/--no-dedupe", help="Skip frames that look like the last embedded one of their shot."),
]
ClaimTtlOpt = Annotated[
    float | None,  # noqa: UP007
    typer.Option(help="With --catalog: seconds before a dead worker's claimed files go to others (300)."),
]


def index_cmd(
    paths: PathsArg,
    index: IndexOpt = None,
    model: ModelOpt = None,
    fps: FpsOpt = 1.0,
    asr_backend: AsrBackendOpt = None,
    asr_model: AsrModelOpt = None,
    no_asr: NoAsrOpt = False,
    asr_when: AsrWhenOpt = "auto",
    language: LanguageOpt = None,
    no_subtitles: NoSubtitlesOpt = False,
    batch_size: BatchOpt = 32,
    commit_interval: CommitOpt = 30.0,
    no_shots: NoShotsOpt = False,
    shots: ShotsOpt = "auto",
    workers: WorkersOpt = None,
    retry_failed: RetryOpt = False,
    no_ocr: NoOcrOpt = False,
    faces: FacesOpt = None,
    text_model: TextModelOpt = DEFAULT_TEXT_MODEL,
    audio_model: AudioModelOpt = None,
    device: DeviceOpt = "auto",
    decoder: DecoderOpt = "auto",
    runtime: RuntimeOpt = None,
    precision: PrecisionOpt = "auto",
    dedupe: DedupeOpt = True,
    index_type: IndexTypeOpt = None,
    backend: BackendOpt = None,
    uri: UriOpt = None,
    collection: CollectionOpt = None,
    catalog: CatalogOpt = None,
    claim_ttl: ClaimTtlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Index media files: decode frames, transcribe speech, embed everything into one CLIP space."""
    with reported_errors():
        index_dir = _writable_index_dir(index)
        backend_name, model_name = remembered_asr(index_dir, asr_backend, asr_model)
        never = no_asr or asr_when == "never"
        asr = None if never else AsrOptions(backend_name, model_name, language, device, asr_when)
        model = resolve_model(IndexLocation(index_dir, catalog), model)
        options = IngestOptions(
            paths=tuple(paths), index_dir=index_dir, model=model, fps=fps, asr=asr, batch_size=batch_size,
            device=device, commit_interval=commit_interval, detect_shots=not no_shots, decoder=decoder,
            embed=EmbedChoice(runtime, precision), dedupe=dedupe, shots=shots, workers=workers,
            retry_failed=retry_failed, catalog=catalog, claim_ttl=claim_ttl,
            store=StoreConfig(backend=backend, uri=uri, collection=collection, index_type=index_type),
            extras=ExtrasOptions(
                ocr=not no_ocr, text_model=None if text_model == NO_TEXT_MODEL else text_model,
                audio_model=audio_model, device=device, subtitles=not no_subtitles,
                faces=faces_installed() if faces is None else faces,
            ),
        )  # fmt: skip
        summary = _run(options, json_out)
    raise typer.Exit(EXIT_PARTIAL if summary.failed else EXIT_OK)


def _writable_index_dir(index: Path | None) -> Path:
    index_dir = resolve_index_dir(index)
    if index_dir.exists() and not index_dir.is_dir():
        raise UsageError(f"--index {display_path(index_dir)} is a file, not a directory", hint="name a directory")
    return index_dir


def _run(options: IngestOptions, json_out: bool) -> IngestSummary:
    with _Display(options.model, enabled=not json_out) as reporter:
        summary = run_ingest(options, reporter)
    if json_out:
        print_json(summary.to_json())
    else:
        print_summary(summary)
    return summary


class _Display(ProgressReporter):
    """The progress display, started once run_ingest has validated the options, after the warning about
    untrained weights."""

    def __init__(self, model: str, enabled: bool) -> None:
        super().__init__(enabled)
        self._model = model

    def begin(self) -> None:
        if parse_model_spec(self._model).untrained:
            warn_untrained(self._model)
        super().begin()


def register(app: typer.Typer) -> None:
    app.command("index")(index_cmd)
