"""`mmsearch query`: a text, an image or an indexed example, answered by a running server or in-process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ..paths import resolve_index_dir
from ..search.fusion import DEFAULT_FUSION
from ..search.temporal import DEFAULT_WITHIN
from ..types import Moment
from .options import CatalogOpt, DeviceOpt, IndexOpt, JsonOpt
from .remote import search_via_server
from .serve import ServerOpt
from .ui import console, moment_json, moments_table, print_json, reported_errors, warn_untrained

if TYPE_CHECKING:
    from ..search.searcher import Query

TextArg = Annotated[str | None, typer.Argument(help="What to look for, in words.")]  # noqa: UP007
ImageOpt = Annotated[Path | None, typer.Option("--image", help="Query by example image.")]  # noqa: UP007
ModalityOpt = Annotated[
    str,
    typer.Option(help="In which files: video (frames, speech, on-screen text, sounds of videos), audio, image or any."),
]
KindOpt = Annotated[
    list[str] | None,  # noqa: UP007
    typer.Option("--kind", help="Only these segment kinds (repeatable): frame, speech, image, ocr, audio, face."),
]
ThenOpt = Annotated[
    list[str] | None,  # noqa: UP007
    typer.Option("--then", help="Temporal query: a text that must follow (repeatable, in order)."),
]
WithinOpt = Annotated[
    float, typer.Option("--within", help="--then: seconds allowed between one part's end and the next part.")
]
TopKOpt = Annotated[int, typer.Option("--top-k", "-k", help="Number of moments to return.")]
LikeOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option("--like", help="Query by example: an indexed file, optionally PATH@START-END (seconds)."),
]
FaceOpt = Annotated[
    Path | None,  # noqa: UP007
    typer.Option("--face", help="Query by face: a photo; the moments of the person it shows (the largest face)."),
]
FaceIndexOpt = Annotated[
    int | None,  # noqa: UP007
    typer.Option("--face-index", help="--face: which face of the photo, 1 = the largest."),
]
PersonOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option("--person", help="A person's id or name (`mmsearch people`): alone, their moments; else a filter."),
]
ChannelOpt = Annotated[
    list[str] | None,  # noqa: UP007
    typer.Option(
        "--channel", help="Only these channels (repeatable): visual, speech, keyword, text, audio, face, people."
    ),
]
FusionOpt = Annotated[
    str, typer.Option(help="calibrated (evidence against each channel's background), rrf or weighted.")
]
WeightOpt = Annotated[
    list[str] | None,  # noqa: UP007
    typer.Option("--weight", help="Channel weight NAME=W (repeatable), e.g. keyword=2."),
]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Show each channel's rank, raw score and calibrated evidence.")
]
NoDaemonOpt = Annotated[
    bool,
    typer.Option(
        "--no-daemon",
        help="Do not start a background server for the index after answering here (also: MMSEARCH_NO_DAEMON=1).",
    ),
]
ExpectedModelOpt = Annotated[
    str | None,  # noqa: UP007
    typer.Option("--model", help="Expected model; an error if the index was built with another."),
]


def query_cmd(
    text: TextArg = None,
    image: ImageOpt = None,
    modality: ModalityOpt = "any",
    kind: KindOpt = None,
    then: ThenOpt = None,
    within: WithinOpt = DEFAULT_WITHIN,
    top_k: TopKOpt = 10,
    like: LikeOpt = None,
    face: FaceOpt = None,
    face_index: FaceIndexOpt = None,
    person: PersonOpt = None,
    channel: ChannelOpt = None,
    fusion: FusionOpt = DEFAULT_FUSION,
    weight: WeightOpt = None,
    explain: ExplainOpt = False,
    index: IndexOpt = None,
    model: ExpectedModelOpt = None,
    device: DeviceOpt = "auto",
    catalog: CatalogOpt = None,
    json_out: JsonOpt = False,
    server: ServerOpt = None,
    no_daemon: NoDaemonOpt = False,
) -> None:
    """Find moments matching a text, an image or an indexed example (--like), fusing visual, speech and keyword."""
    from ..search.fusion import parse_weights
    from ..search.limits import check_query_limits
    from ..search.searcher import Query

    with reported_errors():
        query = Query(
            text=text, image=image, modality=modality, top_k=top_k, channels=tuple(channel or ()),
            fusion=fusion, weights=parse_weights(weight or []), kinds=tuple(kind or ()), then=tuple(then or ()),
            within=within, face=face, face_index=face_index, person=person,
        )  # fmt: skip
        query.validate(like_pending=like is not None)
        check_query_limits(text, query.then, top_k, query.weights, within)
        if like is not None and not like.strip():
            raise UsageError("--like needs a path")
        # --like names a file of the index: it is resolved there, so it is never sent to a server.
        # --face and --person are answered here too (a server takes faces as uploads, see /api/search/face).
        local = model or catalog or like is not None or face is not None or person is not None
        moments = None if local else search_via_server(query, index, server, explain, warn=not json_out)
        here = moments is None
        if moments is None:
            query, moments = _search_here(query, like, index, model, device, catalog, warn=not json_out)
    _print(query, moments, explain, json_out)
    if here and not (server or catalog):
        _start_daemon(index, no_daemon)


def _start_daemon(index: Path | None, no_daemon: bool) -> None:
    """After an in-process answer: a background server for the next queries (cli/daemon.py says why and when)."""
    from .daemon import daemon_wanted, start_daemon

    if daemon_wanted(no_daemon):
        start_daemon(resolve_index_dir(index))


def _search_here(
    query: Query, like: str | None, index: Path | None, model: str | None, device: str, catalog: str | None, warn: bool
) -> tuple[Query, list[Moment]]:
    """The query answered in this process: the index and its model loaded here; `--like PATH[@START-END]` is
    resolved to a file of the index here, once. Returns the query as answered (its label names the example)."""
    from ..search.searcher import Searcher

    searcher = Searcher.open(
        resolve_index_dir(index),
        model=model,
        device=device,
        catalog_url=catalog,
        resident=False,  # one query: resolve its hits through the catalog rather than build the segment table
    )
    try:
        if like is not None:
            query = replace(query, like=searcher.like(like))
        if searcher.manifest.untrained and warn:
            warn_untrained(searcher.manifest.model)
        return query, searcher.search(query)
    finally:
        searcher.close()


def _print(query: Query, moments: Sequence[Moment], explain: bool, json_out: bool) -> None:
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


def register(app: typer.Typer) -> None:
    app.command("query")(query_cmd)
