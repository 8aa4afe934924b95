"""The `mmsearch` command: thin Typer commands that parse, call the library and print.

Exit codes: 0 success; 1 some inputs failed but the rest was indexed; 2 usage error or unusable input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import __version__
from ..errors import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, UsageError
from ..index.manifest import resolve_model
from ..index.shared import resolve_shared_model
from ..ingest.extras import ExtrasOptions
from ..ingest.runner import IngestOptions, remembered_asr, run_ingest
from ..ingest.speech import exit_now_if_abandoned
from ..ingest.transcribe import DEFAULT_ASR_BACKEND, DEFAULT_ASR_MODEL, AsrOptions
from ..models.precision import EmbedChoice
from ..models.sentence import DEFAULT_TEXT_MODEL, NO_TEXT_MODEL
from ..models.spec import DEFAULT_MODEL, KNOWN_MODELS, parse_model_spec
from ..paths import INDEX_ENV, display_path, resolve_index_dir
from ..search.fusion import DEFAULT_FUSION
from ..search.temporal import DEFAULT_WITHIN
from ..stores.protocol import StoreConfig
from . import maintenance as maintenance_commands
from . import serve as serve_commands
from . import show as show_commands
from . import trecvid as trecvid_commands
from .remote import search_via_server
from .serve import ServerOpt
from .ui import (
    ProgressReporter,
    console,
    moment_json,
    moments_table,
    print_json,
    print_summary,
    reported_errors,
    safe,
    setup_logging,
    usage_error_line,
    warn_untrained,
)

app = typer.Typer(
    name="mmsearch",
    help="Cross-modal media search: index video, audio and images; find moments by text or by image.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

IndexOpt = Annotated[
    Path | None,  # noqa: UP007 - typer needs Optional on 3.10
    typer.Option(
        "--index", "-i", envvar=INDEX_ENV, help="Index directory. Default: $MMSEARCH_INDEX, else ./indexes/default."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto (CUDA, else Apple MPS, else CPU), cpu, cuda (or gpu) or mps.")
]
DecoderOpt = Annotated[
    str,
    typer.Option("--decoder", help="Video frame decoder: auto (decord where installed, else PyAV), decord or pyav."),
]


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        envvar="MMSEARCH_MODEL",
        help=f"ARCH:TAG, ARCH:/path/to/checkpoint or random:ARCH. Default: the index's model, else {DEFAULT_MODEL}.",
    ),
]
IndexTypeOpt = Annotated[
    str | None,
    typer.Option(help="faiss index: auto (by size, the default), flat, ivf, sq8, ivfpq or hnsw."),
]
BackendOpt = Annotated[
    str | None,
    typer.Option(help="Vector store: faiss (in DIR) or milvus. Default: faiss, or what the index has."),
]
UriOpt = Annotated[str | None, typer.Option(help="Milvus: a milvus-lite file path.db or http://host:19530.")]  # noqa: UP007
CatalogOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option(
        "--catalog",
        envvar="MMSEARCH_CATALOG",
        help="postgresql://… : a catalog shared by several workers and query hosts (vectors in a Milvus server).",
    ),
]
CollectionOpt = Annotated[
    str | None,
    typer.Option(help="Milvus collection name. Default: derived from host and index path."),
]


def _version(value: bool) -> None:
    if value:
        console.print(f"mmsearch {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details to stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    setup_logging(verbose)


@app.command("index")
def index_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders of video, audio and images.")],
    index: IndexOpt = None,
    model: ModelOpt = None,
    fps: Annotated[float, typer.Option(help="Video frames sampled per second.")] = 1.0,
    asr_backend: Annotated[
        str | None,  # noqa: UP007
        typer.Option(help=f"faster-whisper or openai-whisper. Default: the index's, else {DEFAULT_ASR_BACKEND}."),
    ] = None,
    asr_model: Annotated[
        str | None,  # noqa: UP007
        typer.Option(
            envvar="MMSEARCH_ASR_MODEL",
            help=f"Whisper model name or local path. Default: the index's, else {DEFAULT_ASR_MODEL}.",
        ),
    ] = None,
    no_asr: Annotated[bool, typer.Option("--no-asr", help="Skip speech transcription.")] = False,
    language: Annotated[str | None, typer.Option(help="Spoken language code; detected if omitted.")] = None,  # noqa: UP007
    batch_size: Annotated[int, typer.Option(help="Frames embedded per batch.")] = 32,
    commit_interval: Annotated[float, typer.Option(help="Seconds between durable commits.")] = 30.0,
    no_shots: Annotated[bool, typer.Option("--no-shots", help="Same as --shots none.")] = False,
    shots: Annotated[
        str,
        typer.Option(help="Shot detector: transnetv2, adaptive (PySceneDetect) or none. Default: see README."),
    ] = "auto",
    workers: Annotated[
        int | None,  # noqa: UP007
        typer.Option(help="Decode worker processes. Default: what the cores and memory allow."),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Decode again files that failed before, even if unchanged.")
    ] = False,
    no_ocr: Annotated[
        bool, typer.Option("--no-ocr", envvar="MMSEARCH_NO_OCR", help="Skip reading text on screen (OCR).")
    ] = False,
    text_model: Annotated[
        str,
        typer.Option(
            envvar="MMSEARCH_TEXT_MODEL",
            help=f"Sentence-transformers model (name or local path) for the text channel; {NO_TEXT_MODEL}: off.",
        ),
    ] = DEFAULT_TEXT_MODEL,
    audio_model: Annotated[
        str | None,  # noqa: UP007
        typer.Option(
            envvar="MMSEARCH_AUDIO_MODEL",
            help="CLAP checkpoint directory for the audio (sounds) channel; random:clap-tiny for tests. Default: off.",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    decoder: DecoderOpt = "auto",
    runtime: Annotated[
        str | None,  # noqa: UP007
        typer.Option(help="CLIP runtime: torch or onnx (CPU). Default: what --precision implies."),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (fp16 on CUDA; int8 ONNX on CPU if it passes its self-check, else fp32), fp32, fp16, int8."
        ),
    ] = "auto",
    dedupe: Annotated[
        bool,
        typer.Option("--dedupe/--no-dedupe", help="Skip frames that look like the last embedded one of their shot."),
    ] = True,
    index_type: IndexTypeOpt = None,
    backend: BackendOpt = None,
    uri: UriOpt = None,
    collection: CollectionOpt = None,
    catalog: CatalogOpt = None,
    claim_ttl: Annotated[
        float | None,  # noqa: UP007
        typer.Option(help="With --catalog: seconds before a dead worker's claimed files go to others (300)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Index media files: decode frames, transcribe speech, embed everything into one CLIP space."""
    with reported_errors():
        index_dir = resolve_index_dir(index)
        if index_dir.exists() and not index_dir.is_dir():
            raise UsageError(f"--index {display_path(index_dir)} is a file, not a directory", hint="name a directory")
        backend_name, model_name = remembered_asr(index_dir, asr_backend, asr_model)
        asr = None if no_asr else AsrOptions(backend_name, model_name, language, device)
        model = resolve_shared_model(catalog, model) if catalog else resolve_model(index_dir, model)
        options = IngestOptions(
            paths=tuple(paths),
            index_dir=index_dir,
            model=model,
            fps=fps,
            asr=asr,
            batch_size=batch_size,
            device=device,
            commit_interval=commit_interval,
            detect_shots=not no_shots,
            decoder=decoder,
            embed=EmbedChoice(runtime, precision),
            dedupe=dedupe,
            shots=shots,
            workers=workers,
            retry_failed=retry_failed,
            store=StoreConfig(backend=backend, uri=uri, collection=collection, index_type=index_type),
            catalog=catalog,
            claim_ttl=claim_ttl,
            extras=ExtrasOptions(
                ocr=not no_ocr,
                text_model=None if text_model == NO_TEXT_MODEL else text_model,
                audio_model=audio_model,
                device=device,
            ),
        )
        options.validate()
        if parse_model_spec(model).untrained:
            warn_untrained(model)
        with ProgressReporter(enabled=not json_out) as reporter:
            summary = run_ingest(options, reporter)
        if json_out:
            print_json(summary.to_json())
        else:
            print_summary(summary)
    raise typer.Exit(EXIT_PARTIAL if summary.failed else EXIT_OK)


@app.command("query")
def query_cmd(
    text: Annotated[str | None, typer.Argument(help="What to look for, in words.")] = None,  # noqa: UP007
    image: Annotated[Path | None, typer.Option("--image", help="Query by example image.")] = None,  # noqa: UP007
    modality: Annotated[
        str,
        typer.Option(
            help="In which files: video (frames, speech, on-screen text, sounds of videos), audio, image or any."
        ),
    ] = "any",
    kind: Annotated[
        list[str] | None,  # noqa: UP007
        typer.Option("--kind", help="Only these segment kinds (repeatable): frame, speech, image, ocr, audio."),
    ] = None,
    then: Annotated[
        list[str] | None,  # noqa: UP007
        typer.Option("--then", help="Temporal query: a text that must follow (repeatable, in order)."),
    ] = None,
    within: Annotated[
        float, typer.Option("--within", help="--then: seconds allowed between one part's end and the next part.")
    ] = DEFAULT_WITHIN,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Number of moments to return.")] = 10,
    like: Annotated[
        str | None,  # noqa: UP007
        typer.Option("--like", help="Query by example: an indexed file, optionally PATH@START-END (seconds)."),
    ] = None,
    channel: Annotated[
        list[str] | None,  # noqa: UP007
        typer.Option("--channel", help="Only these channels (repeatable): visual, speech, keyword, text, audio."),
    ] = None,
    fusion: Annotated[
        str, typer.Option(help="calibrated (evidence against each channel's background), rrf or weighted.")
    ] = DEFAULT_FUSION,
    weight: Annotated[
        list[str] | None,  # noqa: UP007
        typer.Option("--weight", help="Channel weight NAME=W (repeatable), e.g. keyword=2."),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show each channel's rank, raw score and calibrated evidence.")
    ] = False,
    index: IndexOpt = None,
    model: Annotated[
        str | None,  # noqa: UP007
        typer.Option("--model", help="Expected model; an error if the index was built with another."),
    ] = None,
    device: DeviceOpt = "auto",
    catalog: CatalogOpt = None,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
) -> None:
    """Find moments matching a text, an image or an indexed example (--like), fusing visual, speech and keyword."""
    from ..search.fusion import parse_weights
    from ..search.searcher import Query, Searcher

    with reported_errors():
        query = Query(
            text=text,
            image=image,
            modality=modality,
            top_k=top_k,
            like=like,
            channels=tuple(channel or ()),
            fusion=fusion,
            weights=parse_weights(weight or []),
            kinds=tuple(kind or ()),
            then=tuple(then or ()),
            within=within,
        )
        query.validate()
        moments = None if model or catalog else search_via_server(query, index, server, explain, warn=not json_out)
        if moments is None:
            searcher = Searcher.open(resolve_index_dir(index), model=model, device=device, catalog_url=catalog)  # type: ignore[arg-type]
            try:
                if searcher.manifest.untrained and not json_out:
                    warn_untrained(searcher.manifest.model)
                moments = searcher.search(query)
            finally:
                searcher.close()
    if json_out:
        print_json({"query": query.label, "results": [moment_json(m, explain) for m in moments]})
    elif moments:
        console.print(moments_table(query.label, moments, explain))
    elif query.fusion == "calibrated":
        console.print(
            "no results: nothing stands out from what this index returns for unrelated queries"
            " (--fusion rrf lists the nearest anyway)"
        )
    else:
        console.print("no results (the index is empty or nothing of that modality is indexed)")


@app.command("info")
def info_cmd(index: IndexOpt = None, json_out: JsonOpt = False) -> None:
    """Show what an index holds: files, segments by kind, model."""
    from ..index.info import index_info

    with reported_errors():
        info = index_info(resolve_index_dir(index))
    if json_out:
        print_json(info)
        return
    for key, value in info.items():
        console.print(f"[bold]{key}[/]: {safe(_shown(value))}")


def _shown(value: object) -> str:
    """`{"frame": 3, "speech": 2}` -> "frame 3, speech 2"; nested dicts in parentheses."""
    if isinstance(value, dict):
        return ", ".join(f"{k} ({_shown(v)})" if isinstance(v, dict) else f"{k} {v}" for k, v in value.items())
    return str(value)


@app.command("models")
def models_cmd(json_out: JsonOpt = False) -> None:
    """List recommended model specs for --model."""
    if json_out:
        print_json([{"spec": m.spec, "dim": m.dim, "note": m.note} for m in KNOWN_MODELS])
        return
    for m in KNOWN_MODELS:
        console.print(f"[bold]{m.spec}[/]  dim={m.dim}  {m.note}")
    console.print("Any open_clip ARCH:TAG works, and ARCH:/path/to/checkpoint for local weights.")


trecvid_commands.register(app)
maintenance_commands.register(app)
serve_commands.register(app)
show_commands.register(app)


# click's UsageError (bad option value, unknown option), wherever this typer version takes click from.
_CLICK_USAGE_ERROR: type[Exception] = typer.BadParameter.__mro__[1]


def main() -> None:
    """The console entry point: click's usage errors (`--top-k abc`) become one `error: …` line, exit 2."""
    try:
        code = app(standalone_mode=False)
    except _CLICK_USAGE_ERROR as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            e.show()  # type: ignore[attr-defined]  # bare `mmsearch`: the help, as click shows it
            raise SystemExit(EXIT_USAGE) from None
        raise SystemExit(usage_error_line(e)) from None
    except typer.Abort:  # a Ctrl-C that no command caught
        code = 130
    code = code if isinstance(code, int) else EXIT_OK
    exit_now_if_abandoned(code)  # Ctrl-C left Whisper inside a chunk: finalizing around it would abort
    raise SystemExit(code)
