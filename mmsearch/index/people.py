"""People: the face tracks of the archive (see `ingest/faces.py`) clustered into identities, with names.

Stored in the catalog (migration 7): `people` (id, name, when first seen) and `face_tracks` (one row per face
segment: its person, its largest face's width and that face's aligned crop as JPEG). The tracks' descriptors are
the `face` space's vectors (`space_vectors`), like any extra space.

Clustering is incremental and keeps ids stable: after each run, every track without a person joins the person
of its nearest already-placed track when that track is within SAME_PERSON (a threshold graph, single link, in
the order tracks were indexed), or else becomes a new person. A person's id never changes; `merge_people` moves
one person's tracks to another, `forget_person` deletes a person's tracks (segments, descriptors, crops) and the person.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PersonNotFound, UsageError
from ..types import SegmentKind
from .migrations import PEOPLE_SCHEMA

FACE_SPACE = "face"
FACE_DIM = 128
# Distance between L2-normalised dlib descriptors under which two tracks are one person: dlib's 0.6 on raw
# descriptors (norm ~1.39), as `ingest/faces.py` SAME_PERSON. Measured on ../shared/faces: same person 0.04-0.31,
# Obama vs Biden 0.58-0.62.
SAME_PERSON = 0.43
# Names are shown in one line and matched in query text.
MAX_NAME = 80


@dataclass(frozen=True)
class Person:
    id: int
    name: str | None
    tracks: int
    files: int
    seconds: float  # time on screen: the tracks' spans added up (stills count 0)
    first_seen: str  # when the first of its faces was indexed (ISO 8601, UTC)
    crop_segment: int | None  # the track whose crop stands for the person: its largest face

    @property
    def label(self) -> str:
        return self.name or f"person {self.id}"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "tracks": self.tracks,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "first_seen": self.first_seen,
            "crop_segment": self.crop_segment,
        }


@dataclass(frozen=True)
class FaceTrackRow:
    """One face track of the archive, as `show` and the channel see it."""

    segment_id: int
    file_id: int
    start: float | None
    end: float | None
    person_id: int | None
    size: int


@dataclass(frozen=True)
class Forgotten:
    person_id: int
    segment_ids: tuple[int, ...]
    file_ids: tuple[int, ...]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise UsageError("a person's name cannot be empty")
    if len(cleaned) > MAX_NAME:
        raise UsageError(f"a person's name is at most {MAX_NAME} characters")
    if cleaned.isdigit():
        raise UsageError(f"a name cannot be a number ({cleaned!r} would read as a person id)")
    return cleaned


def place(
    known: np.ndarray, owners: Sequence[int], new: np.ndarray, next_id: int, threshold: float = SAME_PERSON
) -> list[int]:
    """Person ids for `new` tracks given already-placed `known` tracks and their `owners`; new people are numbered
    from `next_id`. Each new track, in order, joins its nearest placed track's person within `threshold`."""
    pool = [np.asarray(known, np.float32).reshape(-1, FACE_DIM)]
    who = list(owners)
    out: list[int] = []
    for vector in np.asarray(new, np.float32).reshape(-1, FACE_DIM):
        placed = np.concatenate(pool) if len(pool) > 1 else pool[0]
        person = next_id
        if len(placed):
            dist = np.linalg.norm(placed - vector, axis=1)
            best = int(np.argmin(dist))
            if float(dist[best]) <= threshold:
                person = who[best]
        if person == next_id:
            next_id += 1
        pool.append(vector[None, :])
        who.append(person)
        out.append(person)
    return out


class PeopleCatalog:
    """The catalog's methods on the people tables (a base of `Catalog`, so PostgreSQL's catalog inherits them)."""

    _conn: Any

    def schema_version(self) -> int:
        raise NotImplementedError

    @property
    def has_people(self) -> bool:
        """False for an index written before people existed and opened read-only (not migrated): it has none."""
        return self.schema_version() >= PEOPLE_SCHEMA

    def _writable(self) -> None:
        if not self.has_people:
            raise UsageError("this index predates people", hint="run `mmsearch index` on it once to upgrade it")

    def add_face_tracks(self, rows: Sequence[tuple[int, int, bytes | None]]) -> None:
        """(segment id, face width, crop JPEG) of new face tracks; they get a person at the next `assign_people`."""
        if not rows:
            return
        self._writable()
        self._conn.executemany("INSERT INTO face_tracks (segment_id, size, crop) VALUES (?, ?, ?)", list(rows))

    def face_rows_of(self, file_id: int) -> dict[int, tuple[int, bytes | None]]:
        """segment id -> (face width, crop) of one file's face tracks (to index a copy of it without detecting)."""
        if not self.has_people:
            return {}
        sql = "SELECT t.segment_id, t.size, t.crop FROM face_tracks t JOIN segments s ON s.id = t.segment_id"
        rows = self._conn.execute(sql + " WHERE s.file_id = ?", (file_id,)).fetchall()
        return {int(r[0]): (int(r[1]), None if r[2] is None else bytes(r[2])) for r in rows}

    def unplaced_faces(self) -> bool:
        """Whether some face track has no person yet (a cheap test before `assign_people` loads every descriptor)."""
        if not self.has_people:
            return False
        sql = (
            "SELECT 1 FROM segments s LEFT JOIN face_tracks t ON t.segment_id = s.id"
            " WHERE s.kind = ? AND t.person_id IS NULL LIMIT 1"
        )
        return self._conn.execute(sql, (SegmentKind.FACE.value,)).fetchone() is not None

    def _face_vectors(
        self, where: str, params: Sequence[object] = ()
    ) -> tuple[list[int], list[int | None], np.ndarray]:
        sql = (
            "SELECT s.id, t.person_id, v.vector FROM segments s JOIN space_vectors v"
            " ON v.segment_id = s.id AND v.space = ? LEFT JOIN face_tracks t ON t.segment_id = s.id"
            f" WHERE s.kind = ? {where} ORDER BY s.id"
        )
        rows = self._conn.execute(sql, (FACE_SPACE, SegmentKind.FACE.value, *params)).fetchall()
        vectors = np.frombuffer(b"".join(bytes(r[2]) for r in rows), np.float32).reshape(len(rows), FACE_DIM)
        return [int(r[0]) for r in rows], [None if r[1] is None else int(r[1]) for r in rows], vectors

    def assign_people(self, threshold: float = SAME_PERSON) -> dict[int, int]:
        """Give every face track without a person one; returns segment id -> person id of those placed now.
        Unnamed people left without tracks (their files removed) go; named ones stay, to be forgotten by hand."""
        self._writable()
        self._conn.execute(
            "DELETE FROM people WHERE name IS NULL AND id NOT IN"
            " (SELECT person_id FROM face_tracks WHERE person_id IS NOT NULL)"
        )
        ids, owners, vectors = self._face_vectors("")
        todo = [n for n, owner in enumerate(owners) if owner is None]
        if not todo:
            return {}
        done = [n for n, owner in enumerate(owners) if owner is not None]
        top = self._conn.execute("SELECT MAX(id) FROM people").fetchone()[0]
        first_new = int(top or 0) + 1
        persons = place(vectors[done], [owners[n] or 0 for n in done], vectors[todo], first_new, threshold)
        now = _now()
        for person in sorted({p for p in persons if p >= first_new}):
            self._conn.execute("INSERT INTO people (id, name, first_seen) VALUES (?, NULL, ?)", (person, now))
        placed = {ids[n]: person for n, person in zip(todo, persons, strict=True)}
        have = {int(r[0]) for r in self._conn.execute("SELECT segment_id FROM face_tracks WHERE person_id IS NULL")}
        self._conn.executemany(
            "UPDATE face_tracks SET person_id = ? WHERE segment_id = ?",
            [(person, segment) for segment, person in placed.items() if segment in have],
        )
        # Tracks copied from another file's content (a duplicate, a move) come without a crop.
        self._conn.executemany(
            "INSERT INTO face_tracks (segment_id, person_id, size, crop) VALUES (?, ?, 0, NULL)",
            [(segment, person) for segment, person in placed.items() if segment not in have],
        )
        return placed

    def people(self) -> list[Person]:
        if not self.has_people:
            return []
        sql = (
            "SELECT p.id, p.name, p.first_seen, COUNT(t.segment_id), COUNT(DISTINCT s.file_id),"
            ' COALESCE(SUM(s."end" - s.start), 0) FROM people p LEFT JOIN face_tracks t ON t.person_id = p.id'
            " LEFT JOIN segments s ON s.id = t.segment_id GROUP BY p.id, p.name, p.first_seen ORDER BY p.id"
        )
        crops = self._crop_segments()
        return [
            Person(int(i), name, int(n), int(files), float(secs or 0.0), str(first), crops.get(int(i)))
            for i, name, first, n, files, secs in self._conn.execute(sql).fetchall()
        ]

    def _crop_segments(self) -> dict[int, int]:
        """person id -> the segment of its largest face that has a crop."""
        sql = "SELECT person_id, segment_id, size FROM face_tracks WHERE crop IS NOT NULL AND person_id IS NOT NULL"
        best: dict[int, tuple[int, int]] = {}
        for person, segment, size in self._conn.execute(sql).fetchall():
            if int(person) not in best or (int(size), -int(segment)) > (best[int(person)][1], -best[int(person)][0]):
                best[int(person)] = (int(segment), int(size))
        return {person: segment for person, (segment, _) in best.items()}

    def person(self, ref: str | int) -> Person:
        """A person by id or by name (case-insensitive); PersonNotFound names the people there are."""
        everyone = self.people()
        text = str(ref).strip()
        for p in everyone:
            if (text.isdigit() and p.id == int(text)) or (p.name and p.name.casefold() == text.casefold()):
                return p
        known = ", ".join(f"{p.id}" + (f" ({p.name})" if p.name else "") for p in everyone[:20]) or "none yet"
        raise PersonNotFound(f"no person {text!r} in this index", hint=f"people: {known}; see `mmsearch people`")

    def rename_person(self, ref: str | int, name: str) -> Person:
        self._writable()
        person = self.person(ref)
        cleaned = clean_name(name)
        clash = [p for p in self.people() if p.id != person.id and p.name and p.name.casefold() == cleaned.casefold()]
        if clash:
            raise UsageError(
                f"person {clash[0].id} is already named {cleaned!r}",
                hint=f"if they are one person: `mmsearch people merge {clash[0].id} {person.id}`",
            )
        self._conn.execute("UPDATE people SET name = ? WHERE id = ?", (cleaned, person.id))
        return self.person(person.id)

    def merge_people(self, into: str | int, other: str | int) -> Person:
        """`other`'s tracks become `into`'s; `into` keeps its id (and takes `other`'s name if it had none)."""
        self._writable()
        keep, gone = self.person(into), self.person(other)
        if keep.id == gone.id:
            raise UsageError(f"cannot merge person {keep.id} with itself")
        self._conn.execute("UPDATE face_tracks SET person_id = ? WHERE person_id = ?", (keep.id, gone.id))
        if keep.name is None and gone.name is not None:
            self._conn.execute("UPDATE people SET name = ? WHERE id = ?", (gone.name, keep.id))
        self._conn.execute(
            "UPDATE people SET first_seen = ? WHERE id = ?", (min(keep.first_seen, gone.first_seen), keep.id)
        )
        self._conn.execute("DELETE FROM people WHERE id = ?", (gone.id,))
        return self.person(keep.id)

    def forget_person(self, ref: str | int) -> Forgotten:
        """Delete the person, its face tracks' segments, descriptors and crops; nothing of them stays."""
        self._writable()
        person = self.person(ref)
        if isinstance(self._conn, sqlite3.Connection):  # overwrite the deleted rows' pages, not just free them
            self._conn.execute("PRAGMA secure_delete = ON")
        rows = self._conn.execute(
            "SELECT t.segment_id, s.file_id FROM face_tracks t JOIN segments s ON s.id = t.segment_id"
            " WHERE t.person_id = ?",
            (person.id,),
        ).fetchall()
        segments = [int(r[0]) for r in rows]
        for lo in range(0, len(segments), 500):
            chunk = segments[lo : lo + 500]
            marks = ",".join("?" * len(chunk))
            self._conn.execute(f"DELETE FROM space_vectors WHERE segment_id IN ({marks})", chunk)
            self._conn.execute(f"DELETE FROM face_tracks WHERE segment_id IN ({marks})", chunk)
            self._conn.execute(f"DELETE FROM segments WHERE id IN ({marks})", chunk)
        self._conn.execute("DELETE FROM people WHERE id = ?", (person.id,))
        return Forgotten(person.id, tuple(segments), tuple(sorted({int(r[1]) for r in rows})))

    def scrub(self) -> None:
        """After a committed `forget_person`: fold the write-ahead log (which still holds the old pages) into
        the zeroed database file and empty it. PostgreSQL reclaims its dead rows with its own VACUUM."""
        if isinstance(self._conn, sqlite3.Connection):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def face_crop(self, segment_id: int) -> bytes | None:
        if not self.has_people:
            return None
        row = self._conn.execute("SELECT crop FROM face_tracks WHERE segment_id = ?", (segment_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def face_tracks(self, person_id: int | None = None, file_id: int | None = None) -> list[FaceTrackRow]:
        """Face tracks (of one person, or of one file), in file and time order."""
        if not self.has_people:
            return []
        where, params = [], []
        if person_id is not None:
            where.append("t.person_id = ?")
            params.append(person_id)
        if file_id is not None:
            where.append("s.file_id = ?")
            params.append(file_id)
        sql = (
            'SELECT s.id, s.file_id, s.start, s."end", t.person_id, COALESCE(t.size, 0) FROM segments s'
            " LEFT JOIN face_tracks t ON t.segment_id = s.id WHERE s.kind = ?"
            + "".join(f" AND {w}" for w in where)
            + " ORDER BY s.file_id, s.start, s.id"
        )
        rows = self._conn.execute(sql, (SegmentKind.FACE.value, *params)).fetchall()
        return [FaceTrackRow(int(a), int(b), c, d, None if e is None else int(e), int(f)) for a, b, c, d, e, f in rows]

    def persons_of(self, segment_ids: Sequence[int]) -> dict[int, int]:
        """segment id -> person id, for those of the given segments that are placed face tracks."""
        if not self.has_people:
            return {}
        found: dict[int, int] = {}
        wanted = [int(i) for i in segment_ids]
        for lo in range(0, len(wanted), 500):
            chunk = wanted[lo : lo + 500]
            sql = f"SELECT segment_id, person_id FROM face_tracks WHERE person_id IS NOT NULL AND segment_id IN ({','.join('?' * len(chunk))})"
            found.update({int(s): int(p) for s, p in self._conn.execute(sql, chunk).fetchall()})
        return found

    def people_counts(self) -> tuple[int, int]:
        """(face tracks, people)."""
        if not self.has_people:
            return 0, 0
        tracks = self._conn.execute("SELECT COUNT(*) FROM segments WHERE kind = ?", (SegmentKind.FACE.value,))
        people = self._conn.execute("SELECT COUNT(*) FROM people")
        return int(tracks.fetchone()[0]), int(people.fetchone()[0])
