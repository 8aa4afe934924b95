"""Options several commands share (index directory, model, device, store), as Annotated aliases."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..models.spec import DEFAULT_MODEL
from ..paths import INDEX_ENV, resolve_index_dir

if TYPE_CHECKING:
    from ..index.location import IndexLocation

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
    typer.Option("--decoder", help="Video frame decoder: auto (PyAV), pyav or decord."),
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


def index_location(index: Path | None, catalog: str | None) -> IndexLocation:
    """`--catalog URL` (a shared index) if given, else `--index DIR` / $MMSEARCH_INDEX / the default directory."""
    from ..index.location import IndexLocation

    return IndexLocation(resolve_index_dir(index), catalog or None)
