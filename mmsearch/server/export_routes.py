"""Routes from search to edit: a search or the page's clip list exported for editing software, a moment cut as a
file, a file's transcript and on-screen text (the page's timeline), and stored query images (`?image=SHA`)."""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Response
from fastapi import Query as Param
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ..errors import BadInput
from ..export.clips import ClipSpec, cut_clip
from ..export.formats import FORMATS, ExportFormat, export_format, export_moments
from ..index.catalog import fs_path
from ..types import Moment, SegmentKind
from .live import LiveIndex
from .media import NotFound, media_path, parse_file_id
from .routes import ERRORS, Live, Options

router = APIRouter()
FORMAT_HELP = f"One of: {', '.join(FORMATS)}."
MAX_EXPORT_MOMENTS = 5000  # a clip list far longer than any edit; bounds the work of one request
MAX_HANDLES_S = 60.0
TRANSCRIPT_KINDS = (SegmentKind.SPEECH, SegmentKind.SUBTITLE, SegmentKind.OCR)
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {**ERRORS, 200: {"description": "The export file (attachment)."}}


class ExportMoment(BaseModel):
    """A moment of the page's clip list: the file by catalog id (never a path), the span as the person set it."""

    file_id: int
    start: float | None = Field(default=None, ge=0)
    end: float | None = Field(default=None, ge=0)
    kind: str = Field(default="frame", description="Segment kind that matched: frame, speech, ocr, audio, image.")
    text: str | None = None
    score: float = 0.0


class ExportRequest(BaseModel):
    title: str = Field(default="mmsearch clip list", max_length=200, description="The timeline's name.")
    moments: list[ExportMoment] = Field(min_length=1, max_length=MAX_EXPORT_MOMENTS)


class TranscriptLine(BaseModel):
    kind: str = Field(description="speech (what is said) or ocr (text on screen).")
    start: float | None
    end: float | None
    text: str


FormatParam = Annotated[str, Param(alias="format", description=FORMAT_HELP)]
HandlesParam = Annotated[float, Param(ge=0, le=MAX_HANDLES_S, description="Seconds before and after each moment.")]


@router.get("/api/export", summary="A search as a timeline file", responses=EXPORT_RESPONSES)
def export_search(
    live: Live,
    options: Options,
    q: Annotated[str, Param(min_length=1, description="What to look for, in words.")],
    fmt: FormatParam = "otio",
    handles: HandlesParam = 0.0,
) -> Response:
    """The moments of `/api/search?q=…` as an edit: one clip per moment (`mmsearch export QUERY`)."""
    chosen = export_format(fmt)
    query = options.query(text=q)
    moments = [moment for moment, _ in live.search(query)]
    return _attachment(export_moments(moments, chosen, query.label, handles), chosen, query.label)


@router.post("/api/export", summary="A clip list as a timeline file", responses=EXPORT_RESPONSES)
def export_list(live: Live, body: ExportRequest, fmt: FormatParam = "otio", handles: HandlesParam = 0.0) -> Response:
    """The page's clip list, in its order, as an edit; files by catalog id."""
    chosen = export_format(fmt)
    moments = [_moment(live, m) for m in body.moments]
    return _attachment(export_moments(moments, chosen, body.title, handles), chosen, body.title)


@router.get("/api/clip/{file_id}", summary="A moment cut as a media file", responses=EXPORT_RESPONSES)
def clip(
    file_id: str,
    live: Live,
    tasks: BackgroundTasks,
    start: Annotated[float, Param(ge=0, description="Seconds.")],
    end: Annotated[float, Param(gt=0, description="Seconds.")],
    exact: Annotated[bool, Param(description="Re-encode to cut on the exact frames.")] = False,
) -> FileResponse:
    """The moment as a file (`mmsearch clip`): stream copy from the keyframe at or before `start`, or exact."""
    if end <= start:
        raise BadInput("end must be after start", hint="start and end are seconds into the file")
    number = parse_file_id(file_id)
    path = media_path(live.file(number), number)
    folder = Path(tempfile.mkdtemp(prefix="mmsearch-clip-"))
    tasks.add_task(shutil.rmtree, folder, True)
    try:
        written = cut_clip(ClipSpec(path, start, end), folder, exact)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    kind = mimetypes.guess_type(written.name)[0] or "application/octet-stream"  # a file ffmpeg just wrote
    return FileResponse(written, media_type=kind, filename=written.name)


@router.get(
    "/api/transcript/{file_id}", summary="What is said and shown in a file", response_model=list[TranscriptLine]
)
def transcript(file_id: str, live: Live) -> list[dict[str, Any]]:
    """The file's speech, subtitle and on-screen text segments with their times, in time order (the page's side panel)."""
    number = parse_file_id(file_id)
    if live.file(number) is None:
        raise NotFound(f"no file with id {number} in the index", hint="ids come from /api/search results")
    lines = live.segments(number, TRANSCRIPT_KINDS)
    return [{"kind": s.kind.value, "start": s.start, "end": s.end, "text": s.text} for s in lines if s.text]


def _moment(live: LiveIndex, wanted: ExportMoment) -> Moment:
    record = live.file(wanted.file_id)
    if record is None:
        raise NotFound(f"no file with id {wanted.file_id} in the index", hint="the clip list may be from another index")
    try:
        kind = SegmentKind(wanted.kind)
    except ValueError:
        raise BadInput(
            f"unknown segment kind {wanted.kind!r}", hint=f"one of: {', '.join(k.value for k in SegmentKind)}"
        ) from None
    path = os.fsdecode(fs_path(record))
    return Moment(path, kind, wanted.start, wanted.end, wanted.score, wanted.text, file_id=record.id)


def _attachment(text: str, fmt: ExportFormat, title: str) -> Response:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-")[:60] or "mmsearch"
    disposition = f'attachment; filename="{name}{fmt.suffix}"'
    return Response(text, media_type=fmt.media_type, headers={"Content-Disposition": disposition})
