"""HTTP routes for people: list them, see one, name, merge and forget them, their crops, and search by face.

The same library calls as `mmsearch people` and `mmsearch query --face`; a change takes the index's write lock
for one short transaction (409 while an `mmsearch index` run holds it) and the live index follows the commit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Request, Response, UploadFile
from fastapi import Query as Param
from pydantic import BaseModel, Field

from ..index.people import Person
from ..index.people_edit import change_people
from ..search.searcher import Searcher
from .media import NotFound
from .models import SearchResponse
from .query_images import UPLOAD_CHUNK, UploadTooLarge
from .routes import ERRORS, Live, Options, answer_query

people_api = APIRouter()


class PersonOut(BaseModel):
    """One person, as `mmsearch people --json` lists it, with the URL of its crop."""

    id: int
    name: str | None = Field(description="Given with `mmsearch people name` or PATCH /api/people/{id}.")
    tracks: int = Field(description="Face tracks: a face followed through a shot, or a face of a still image.")
    files: int
    seconds: float = Field(description="Time on screen: the face tracks' spans added up.")
    first_seen: str = Field(description="When the first of its faces was indexed (ISO 8601, UTC).")
    crop_segment: int | None
    crop_url: str | None = Field(description="A JPEG of the person's largest face.")


class ForgottenOut(BaseModel):
    id: int
    tracks: int = Field(description="Face tracks deleted, with their descriptors and crops.")
    files: int = Field(description="Files they were in (the files stay indexed).")


class Rename(BaseModel):
    name: str = Field(description="The person's name; text queries that mention it find the person.")


class Merge(BaseModel):
    other: str = Field(description="Id or name of the person whose faces move to this one (it goes away).")


def _out(person: Person) -> dict[str, Any]:
    crop = f"/api/people/{person.id}/crop" if person.crop_segment is not None else None
    return {**person.to_json(), "crop_url": crop}


@people_api.get("/api/people", summary="The people of the index", response_model=list[PersonOut], responses=ERRORS)
def list_people(live: Live) -> list[dict[str, Any]]:
    """Every person found in the index's faces (`mmsearch people --json`)."""
    return [_out(p) for p in live.run(lambda s: s.catalog.people())]


@people_api.get("/api/people/{ref}", summary="One person", response_model=PersonOut, responses=ERRORS)
def get_person(ref: str, live: Live) -> dict[str, Any]:
    """A person by id or name; their moments are `/api/search?person={id}`."""
    return _out(live.run(lambda s: s.catalog.person(ref)))


@people_api.get(
    "/api/people/{ref}/crop", summary="A person's face", responses={**ERRORS, 200: {"content": {"image/jpeg": {}}}}
)
def person_crop(ref: str, live: Live) -> Response:
    """The aligned crop of the person's largest face (JPEG)."""

    def crop(searcher: Searcher) -> bytes | None:
        person = searcher.catalog.person(ref)
        return None if person.crop_segment is None else searcher.catalog.face_crop(person.crop_segment)

    data = live.run(crop)
    if data is None:
        raise NotFound(f"person {ref} has no crop", hint="faces copied from a duplicate file come without one")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, no-cache"})


@people_api.patch("/api/people/{ref}", summary="Name a person", response_model=PersonOut, responses=ERRORS)
def rename_person(ref: str, body: Rename, live: Live) -> dict[str, Any]:
    """Give a person a name (`mmsearch people name`)."""
    return _out(change_people(live.index_dir, lambda cat: cat.rename_person(ref, body.name)))


@people_api.post("/api/people/{ref}/merge", summary="Merge two people", response_model=PersonOut, responses=ERRORS)
def merge_people(ref: str, body: Merge, live: Live) -> dict[str, Any]:
    """`other`'s faces become this person's (`mmsearch people merge`)."""
    return _out(change_people(live.index_dir, lambda cat: cat.merge_people(ref, body.other)))


@people_api.delete("/api/people/{ref}", summary="Forget a person", response_model=ForgottenOut, responses=ERRORS)
def forget_person(ref: str, live: Live) -> dict[str, Any]:
    """Delete the person's face tracks, descriptors, crops and name (`mmsearch people forget`)."""
    gone = change_people(live.index_dir, lambda cat: cat.forget_person(ref))
    return {"id": gone.person_id, "tracks": len(gone.segment_ids), "files": len(gone.file_ids)}


@people_api.post(
    "/api/search/face",
    summary="Search by face",
    response_model=SearchResponse,
    response_model_exclude_unset=True,
    responses=ERRORS,
)
def search_face(
    request: Request,
    live: Live,
    options: Options,
    response: Response,
    image: Annotated[UploadFile, File(description="A photo with the face (JPEG, PNG, ...).")],
    face_index: Annotated[int | None, Param(ge=1, description="Which face of the photo, 1 = the largest.")] = None,
    person: Annotated[str | None, Param(description="Only moments with this person (id or name).")] = None,
) -> dict[str, Any]:
    """The moments of the person whose face the photo shows (`mmsearch query --face`)."""
    limit = request.app.state.config.max_upload_bytes
    with tempfile.TemporaryDirectory(prefix="mmsearch-upload-") as tmp:
        path = Path(tmp) / "query-face"
        size = 0
        with path.open("wb") as out:
            while chunk := image.file.read(UPLOAD_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(f"the image is larger than {limit} bytes", hint="send a smaller image")
                out.write(chunk)
        query = options.query(face=path, face_index=face_index, person=person)
        return answer_query(live, query, f"face:{image.filename or 'upload'}", options.explain, response)
