"""HTTP routes: they parse, call the same library the CLI calls (Query, Searcher via LiveIndex), and shape JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile
from fastapi import Query as Param
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from ..errors import BadInput, UsageError
from ..index.catalog import FileRecord, fs_path
from ..paths import display_path
from ..search.fusion import DEFAULT_FUSION, parse_weights
from ..search.highlight import matched_words
from ..search.like import LikeSpec
from ..search.limits import MAX_QUERY_CHARS, MAX_SECONDS, MAX_THEN_PARTS, MAX_TOP_K, MAX_WITHIN_S, check_query_limits
from ..search.results import moment_json
from ..search.searcher import Query
from ..search.temporal import DEFAULT_WITHIN
from ..types import MediaKind, Moment, SegmentKind
from .discovery import INDEX_HEADER, UNTRAINED_HEADER, index_identity
from .filters import index_channels
from .live import LiveIndex
from .media import MediaTypes, NotFound, open_indexed, parse_file_id, thumbnail, thumbnail_cache_dir
from .models import ErrorOut, IndexInfo, SearchResponse, SearchResult
from .query_images import IMAGE_HEADER, query_image_dir, store_query_image, stored_query_image
from .ranges import MediaResponse

STATIC_DIR = Path(__file__).parent / "static"
PAGE_PATHS = frozenset({"/", "/favicon.ico"})

api = APIRouter()
page = APIRouter(include_in_schema=False)
page.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut}
    for code in (400, 401, 404, 413, 422)  # the statuses a client must expect; 5xx only when the index is broken
}

MEDIA_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    206: {"description": "A byte range (HTTP Range)."},
    416: {
        "model": ErrorOut,
        "description": "No requested range starts inside the file; `Content-Range: bytes */SIZE`.",
    },
}


class QueryOptions:
    """The options /api/search shares with `mmsearch query` (GET and POST alike)."""

    def __init__(
        self,
        modality: Annotated[str, Param(description="video, audio, image or any.")] = "any",
        kind: Annotated[list[str] | None, Param(description="Only these segment kinds (repeatable).")] = None,
        then: Annotated[
            list[str] | None,
            Param(
                max_length=MAX_THEN_PARTS,
                description=f"Temporal query: texts that must follow (at most {MAX_THEN_PARTS}).",
            ),
        ] = None,
        within: Annotated[
            float, Param(gt=0, le=MAX_WITHIN_S, description="With then: seconds allowed between parts.")
        ] = DEFAULT_WITHIN,
        channel: Annotated[list[str] | None, Param(description="Only these channels (repeatable).")] = None,
        fusion: Annotated[str, Param(description="calibrated, rrf or weighted.")] = DEFAULT_FUSION,
        weight: Annotated[list[str] | None, Param(description="Channel weight NAME=W (repeatable).")] = None,
        top_k: Annotated[int, Param(ge=1, le=MAX_TOP_K, description="Number of moments.")] = 10,
        explain: Annotated[bool, Param(description="Add each channel's rank and score.")] = False,
    ) -> None:
        self.modality = modality
        self.kinds = tuple(kind or ())
        self.then = tuple(then or ())
        self.within = within
        self.channels = tuple(channel or ())
        self.fusion = fusion
        self.weights = parse_weights(weight or [])
        self.top_k = top_k
        self.explain = explain

    def query(self, **what: Any) -> Query:
        query = Query(
            modality=self.modality,
            kinds=self.kinds,
            then=self.then,
            within=self.within,
            channels=self.channels,
            fusion=self.fusion,
            weights=self.weights,
            top_k=self.top_k,
            **what,
        )
        query.validate()
        check_query_limits(query.text, query.then, query.top_k, query.weights, query.within)
        return query


def media_types(request: Request) -> MediaTypes:
    known: MediaTypes = request.app.state.media_types
    return known


def live_index(request: Request) -> LiveIndex:
    live: LiveIndex = request.app.state.live
    return live


Live = Annotated[LiveIndex, Depends(live_index)]
Options = Annotated[QueryOptions, Depends()]


@api.get(
    "/api/search",
    summary="Search by text or by example",
    response_model=SearchResponse,
    response_model_exclude_unset=True,
    responses=ERRORS,
)
def search(
    live: Live,
    options: Options,
    response: Response,
    q: Annotated[str | None, Param(max_length=MAX_QUERY_CHARS, description="What to look for, in words.")] = None,
    like: Annotated[str | None, Param(description="Query by example: a file_id from a result.")] = None,
    start: Annotated[
        float | None, Param(ge=0, le=MAX_SECONDS, description="With like: start of the example, seconds.")
    ] = None,
    end: Annotated[
        float | None, Param(ge=0, le=MAX_SECONDS, description="With like: end of the example, seconds.")
    ] = None,
    image: Annotated[str | None, Param(description="A query image uploaded before, by its SHA-256.")] = None,
    person: Annotated[
        str | None,
        Param(max_length=MAX_QUERY_CHARS, description="A person's id or name: alone, their moments; else a filter."),
    ] = None,
) -> dict[str, Any]:
    """Moments matching a text (`q`), an indexed example (`like`) or an uploaded image (`image`)."""
    if (start is None) != (end is None):
        raise UsageError("give both start and end, or neither")
    if image is not None:
        query = options.query(image=stored_query_image(image, query_image_dir(live.index_dir)), text=q, person=person)
        response.headers[IMAGE_HEADER] = image
        return {**answer_query(live, query, "image:" + image[:12], options.explain, response), "image": image}
    if like is not None:
        number = parse_file_id(like)
        record = live.file(number)
        if record is None:
            raise NotFound(f"no file with id {number} in the index", hint="ids come from /api/search results")
        # Query by example reads the stored vectors: the file itself need not be on disk any more.
        example = LikeSpec(record.id, start, end, display_path(fs_path(record)))
        query = options.query(like=example, text=q, person=person)  # both given: the CLI's "only one of" error
    else:
        query = options.query(text=q, person=person)
    return answer_query(live, query, query.label, options.explain, response)


@api.post(
    "/api/search",
    summary="Search by image",
    response_model=SearchResponse,
    response_model_exclude_unset=True,
    responses=ERRORS,
)
def search_image(
    request: Request,
    live: Live,
    options: Options,
    response: Response,
    image: Annotated[UploadFile, File(description="The query image (JPEG, PNG, ...).")],
) -> dict[str, Any]:
    """Moments that look like an uploaded image (`mmsearch query --image`)."""
    limit = request.app.state.config.max_upload_bytes
    stored = store_query_image(image, limit, query_image_dir(live.index_dir))
    query = options.query(image=stored)
    response.headers[IMAGE_HEADER] = stored.name
    try:
        answer = answer_query(live, query, f"image:{image.filename or 'upload'}", options.explain, response)
    except BadInput as e:  # its message names the stored file and the CLI's --image: neither means anything here
        raise BadInput("the uploaded file is not a readable image", hint="send a JPEG, PNG or WebP") from e
    return {**answer, "image": stored.name}


@api.get("/api/query-image/{sha}", summary="An uploaded query image", responses=ERRORS)
def query_image(sha: str, live: Live) -> FileResponse:
    """The query image uploaded with that SHA-256 (the page's preview of an image search)."""
    path = stored_query_image(sha, query_image_dir(live.index_dir))
    return FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})


@api.get("/api/info", summary="What the index holds", response_model=IndexInfo, responses=ERRORS)
def info(live: Live) -> dict[str, object]:
    """What the index holds (`mmsearch info --json`) in the generation being served, and the channels it has."""
    described = live.info()
    # The index directory's name only: where it lives on the server is none of a client's business.
    return {**described, "index": live.index_dir.name, "channels": index_channels(described)}


@api.get("/media/{file_id}", summary="The media file, with HTTP Range", responses=MEDIA_RESPONSES)
def media(file_id: str, live: Live, request: Request) -> FileResponse:
    """The indexed file itself, by catalog id, with HTTP Range support (seeking in a long video)."""
    number = parse_file_id(file_id)
    opened = open_indexed(live.file(number), number)
    try:
        kind = media_types(request).of(opened)
    except BaseException:
        opened.close()
        raise
    return MediaResponse(opened, request, kind)


@api.get(
    "/thumbnail/{file_id}", summary="A JPEG of a moment", responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}}
)
def thumbnail_jpeg(
    file_id: str,
    live: Live,
    t: Annotated[float, Param(ge=0, le=MAX_SECONDS, description="Seconds into a video; ignored for an image.")] = 0.0,
) -> Response:
    """A JPEG of the frame at t (a still image: the image), made once and cached."""
    number = parse_file_id(file_id)
    data = thumbnail(live.file(number), number, t, thumbnail_cache_dir(live.index_dir))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@page.get("/")
def home() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@page.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")


def answer_query(live: LiveIndex, query: Query, label: str, explain: bool, response: Response) -> dict[str, Any]:
    found = live.search(query)
    response.headers[INDEX_HEADER] = index_identity(live.index_dir)
    if live.untrained_model:
        response.headers[UNTRAINED_HEADER] = live.untrained_model
    return {"query": label, "results": [_result(m, record, explain, query.text) for m, record in found]}


def _result(moment: Moment, record: FileRecord, explain: bool, text: str | None) -> SearchResult:
    data = moment_json(moment, explain)
    return SearchResult.model_validate(
        {
            **data,
            "file_id": record.id,
            "media_kind": record.kind.value,
            "media_url": f"/media/{record.id}",
            "thumbnail_url": _thumbnail_url(moment, record),
            "matched_words": matched_words(text, moment),
        }
    )


def _thumbnail_url(moment: Moment, record: FileRecord) -> str | None:
    if record.kind is MediaKind.AUDIO:
        return None
    if record.kind is MediaKind.IMAGE or moment.start is None:
        return f"/thumbnail/{record.id}"
    # A shot's (or face track's) middle frame shows it best (its first may be a cut); speech shows where it starts.
    middle = moment.kind in (SegmentKind.FRAME, SegmentKind.FACE) and moment.end is not None
    t = (moment.start + moment.end) / 2 if middle and moment.end is not None else moment.start
    return f"/thumbnail/{record.id}?t={t:.1f}"
