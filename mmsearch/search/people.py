"""People at query time: the `face` channel (a photo's face against the face tracks' descriptors), the `people`
channel (a text query naming a person finds that person's face tracks), and face queries from photos.

- `face` searches the `face` space (filled by `ingest/faces.py`) with the descriptor of the query photo's face,
  by cosine; a track of the same person scores ~0.95 and above, another person ~0.82 and below (see MIN_FACE_SCORE).
- `people` reads the names given with `mmsearch people name`: a query containing a person's full name, or the
  last word of it when no one else's name ends so, ranks that person's face tracks, longest first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import BadInput
from ..index.catalog import FileRecord
from ..index.people import FACE_SPACE, SAME_PERSON, FaceTrackRow, Person
from ..ingest.faces import DlibFaces, FaceEngine
from ..types import Moment, SegmentHit, SegmentKind
from .evidence import Candidate, ChannelContext, Exclusion, segment_key, space_hits


class PeopleCatalogReader(Protocol):
    """What the person filters read of a catalog."""

    def person(self, ref: str | int) -> Person: ...

    def files(self) -> list[FileRecord]: ...

    def face_tracks(self, person_id: int | None = None, file_id: int | None = None) -> list[FaceTrackRow]: ...


SPACE = FACE_SPACE
KINDS = frozenset({SegmentKind.FACE})
# Cosine of two unit descriptors at distance SAME_PERSON (|a-b|^2 = 2 - 2cos): below it, another person's face.
MIN_FACE_SCORE = 1.0 - SAME_PERSON**2 / 2
# The face channel's calibration background is fixed, not probed (probe images hold no faces): another person's
# face lies ~0.6 away (Obama to Biden 0.58-0.62 on ../shared/faces), a cosine of 0.82, and the same-person
# threshold stands two spreads above that, so a track at the threshold has evidence 2, one of the same photo ~4.
FACE_BACKGROUND_CENTER = 1.0 - 0.6**2 / 2
FACE_BACKGROUND_SPREAD = (MIN_FACE_SCORE - FACE_BACKGROUND_CENTER) / 2
# A full name in the query counts more than a surname alone.
FULL_NAME, LAST_NAME = 1.0, 0.8


def face_search(
    ctx: ChannelContext, vector: np.ndarray, kinds: frozenset[SegmentKind], depth: int, exclude: Exclusion | None
) -> list[Candidate]:
    """Face tracks of the query face's person: nearest first, none beyond the same-person threshold."""
    hits = space_hits(ctx, SPACE, vector, depth, kinds, exclude)
    return [Candidate(segment_key(h), fid, h) for fid, h in hits if h.score >= MIN_FACE_SCORE]


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"\w+", text.casefold())) + " "


def named_in(text: str, people: Sequence[Person]) -> list[tuple[Person, float]]:
    """The named people a text mentions, with how surely: (person, FULL_NAME or LAST_NAME)."""
    words = _words(text)
    named = [p for p in people if p.name]
    last: dict[str, list[Person]] = {}
    for p in named:
        surname = _words(p.name or "").split()[-1:]
        if surname and len(surname[0]) >= 3:
            last.setdefault(surname[0], []).append(p)
    found: list[tuple[Person, float]] = []
    for p in named:
        full = _words(p.name or "")
        if full.strip() and full in words:
            found.append((p, FULL_NAME))
            continue
        surname = full.split()[-1:]
        if surname and len(last.get(surname[0], [])) == 1 and f" {surname[0]} " in words:
            found.append((p, LAST_NAME))
    return found


def people_search(
    ctx: ChannelContext, text: str, kinds: frozenset[SegmentKind], depth: int, exclude: Exclusion | None
) -> list[Candidate]:
    """Face tracks of the people the query names; each person's longest tracks first."""
    catalog = ctx.catalog
    scored: list[tuple[float, float, int]] = []
    for person, score in named_in(text, catalog.people()):
        for track in catalog.face_tracks(person_id=person.id):
            length = (track.end or 0.0) - (track.start or 0.0)
            scored.append((score, length, track.segment_id))
    scored.sort(key=lambda s: (-s[0], -s[1], s[2]))
    ids = [segment for _, _, segment in scored]
    hits = ctx.segments().hits(ids, [score for score, _, _ in scored], kinds, exclude, limit=depth)
    return [Candidate(segment_key(h), fid, h) for fid, h in hits]


def photo_face(
    image: np.ndarray, face_index: int | None = None, engine: FaceEngine | None = None, label: str = "photo"
) -> np.ndarray:
    """The descriptor of one face of a query photo: the largest, or the `face_index`-th (1 = largest)."""
    from ..ingest.faces import image_faces

    faces = image_faces(engine or DlibFaces.load(), image)
    if not faces:
        raise BadInput(f"no face found in {label}", hint="use a photo where the face is at least 40 px wide")
    if face_index is None:
        return faces[0].descriptor
    if not 1 <= face_index <= len(faces):
        raise BadInput(f"--face-index {face_index}: {label} has {len(faces)} face(s), numbered 1 (largest) and up")
    return faces[face_index - 1].descriptor


def photo_label(path: Path) -> str:
    return f"face:{path.name}"


def person_moments(catalog: PeopleCatalogReader, ref: str, limit: int) -> list[Moment]:
    """Every face track of one person as a moment: longest first (a still's face counts as 0 s)."""
    person = catalog.person(ref)
    paths = {f.id: f.path for f in catalog.files()}
    tracks = sorted(
        catalog.face_tracks(person_id=person.id),
        key=lambda t: (-((t.end or 0.0) - (t.start or 0.0)), t.file_id, t.start or 0.0),
    )
    moments = []
    for t in tracks[:limit]:
        path = paths[t.file_id]
        hit = SegmentHit(t.segment_id, path, SegmentKind.FACE, t.start, t.end, 1.0, person.label, file_id=t.file_id)
        moments.append(Moment(path, SegmentKind.FACE, t.start, t.end, 1.0, person.label, (hit,), file_id=t.file_id))
    return moments


def with_person(moments: Sequence[Moment], catalog: PeopleCatalogReader, ref: str) -> list[Moment]:
    """The moments during which the person is on screen (a still: the person is in it)."""
    person = catalog.person(ref)
    spans: dict[int, list[tuple[float | None, float | None]]] = {}
    for t in catalog.face_tracks(person_id=person.id):
        spans.setdefault(t.file_id, []).append((t.start, t.end))
    return [m for m in moments if any(_overlap(m.start, m.end, a, b) for a, b in spans.get(m.file_id or -1, []))]


def _overlap(start: float | None, end: float | None, a: float | None, b: float | None) -> bool:
    if start is None or a is None:
        return True  # a still image, or a whole-file moment
    return start < (b if b is not None else a) + 1e-6 and (end if end is not None else start) > a - 1e-6
