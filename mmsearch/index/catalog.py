"""SQLite catalog beside the vector index: files, segments and the manifest, with numbered migrations.

Segment ids are the vector ids in the store, so catalog and vectors can be checked against each other.
The catalog runs in WAL mode: a writer holds one transaction between commits while queries keep reading
the last committed state. A reader that cannot create the `-shm` file (read-only mount, another user's index,
a full disk) reads the file as immutable when no WAL is pending: SQLite folds the WAL into the file when the
last writer closes, so that is exactly the last commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import CorruptIndex, DiskFull, MMSearchError, SchemaTooNew
from ..paths import display_path, path_key
from ..types import CLIP_KINDS, MediaKind, Segment, SegmentKind
from . import migrations as schema
from .migrations import ASR_SCHEMA, FAILED_SCHEMA, MIGRATIONS, SCHEMA_VERSION, SHOTS_SCHEMA, SPACES_SCHEMA
from .people import PeopleCatalog

# Parameterised kinds of the CLIP store, for the SQL that must see only segments with a CLIP vector.
_CLIP_KIND_VALUES = tuple(sorted(k.value for k in CLIP_KINDS))
_CLIP_KIND_SQL = f"kind IN ({','.join('?' * len(_CLIP_KIND_VALUES))})"


@dataclass(frozen=True)
class FileRecord:
    id: int
    raw_path: bytes
    path: str
    kind: MediaKind
    size: int
    mtime_ns: int
    sha256: str
    duration: float | None
    has_audio: bool
    asr: str | None = None  # ASR that transcribed its audio; None when it was not transcribed
    language: str | None = None  # language of its speech (what Whisper heard most, or --language)


@dataclass(frozen=True)
class SegmentRecord:
    id: int
    file_id: int
    path: str
    kind: SegmentKind
    start: float | None
    end: float | None
    text: str | None
    channel: int | None = None  # stereo channel a speech segment was heard in (None: the mix)
    language: str | None = None  # a speech segment's or subtitle cue's language, when known


def now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Catalog(PeopleCatalog):
    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, create: bool = False, readonly: bool = False) -> Catalog:
        if not create and not path.exists():
            raise CorruptIndex(f"catalog {display_path(path)} is missing")
        try:
            # Percent-encoded, so that "?" or "#" in a directory name is not read as URI syntax.
            uri = f"file:{urllib.parse.quote(os.fsencode(path))}" + ("?mode=ro" if readonly else "")
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
            catalog = cls(conn, path)
            if readonly:
                catalog = catalog._readable()
                if catalog._check_version() == 0:
                    conn.close()
                    raise CorruptIndex(
                        f"catalog {display_path(path)} is empty: the first index run into it stopped before committing",
                        hint="run `mmsearch index PATH` again",
                    )
            else:
                catalog._migrate()
        except sqlite3.DatabaseError as e:
            raise catalog_error(e, path) from e
        return catalog

    def _readable(self) -> Catalog:
        """This catalog, or the same file opened immutable when SQLite cannot set up WAL reading here."""
        try:
            self._conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return self
        except sqlite3.OperationalError as e:
            wal = Path(f"{self.path}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                # Commits wait in the WAL; reading without it would show an older state.
                raise CorruptIndex(
                    f"catalog {display_path(self.path)} cannot be read here ({e}) while a writer's log is pending",
                    hint="query it again when the writer has finished, or as a user who can write the index",
                ) from e
            self._conn.close()
        uri = f"file:{urllib.parse.quote(os.fsencode(self.path))}?mode=ro&immutable=1"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        return Catalog(conn, self.path)

    def close(self) -> None:
        self._conn.close()

    # -- schema ---------------------------------------------------------------------------------------

    def schema_version(self) -> int:
        has_table = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
        ).fetchone()
        if not has_table:
            return 0
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _check_version(self) -> int:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            damage = self.damage()
            if damage is not None:  # a garbled page can read as any version number
                raise CorruptIndex(f"catalog {display_path(self.path)} is damaged: {damage}", hint=REPAIR_CATALOG_HINT)
            raise SchemaTooNew(
                f"index schema version {version} is newer than this mmsearch understands ({SCHEMA_VERSION})",
                hint="upgrade mmsearch to read this index",
            )
        return version

    def _migrate(self) -> None:
        version = self._check_version()
        if version == SCHEMA_VERSION:
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
            )
            for number, script in enumerate(MIGRATIONS, start=1):
                if number <= version:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, now_text()))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    # -- transactions ---------------------------------------------------------------------------------

    def begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def total_changes(self) -> int:
        """Rows changed through this connection so far; equal counts mean nothing was written in between."""
        return int(self._conn.total_changes)

    # -- manifest -------------------------------------------------------------------------------------

    def manifest(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM manifest").fetchall())

    def set_manifest(self, values: dict[str, str]) -> None:
        self._conn.executemany(
            "INSERT INTO manifest (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            sorted(values.items()),
        )

    # -- files ----------------------------------------------------------------------------------------

    def _file_columns(self) -> str:
        # Read-only opens do not migrate: an index of an older schema has no asr column yet.
        asr = "asr" if self.schema_version() >= ASR_SCHEMA else "NULL"
        language = "language" if self.schema_version() >= schema.LANGUAGE_SCHEMA else "NULL"
        return f"id, raw_path, path, kind, size, mtime_ns, sha256, duration, has_audio, {asr}, {language}"

    def files(self) -> list[FileRecord]:
        rows = self._conn.execute(f"SELECT {self._file_columns()} FROM files ORDER BY id").fetchall()
        return [_file_record(row) for row in rows]

    def file_by_key(self, key: bytes) -> FileRecord | None:
        row = self._conn.execute(f"SELECT {self._file_columns()} FROM files WHERE raw_path = ?", (key,)).fetchone()
        return _file_record(row) if row else None

    def add_file(
        self,
        path: Path,
        kind: MediaKind,
        size: int,
        mtime_ns: int,
        sha256: str,
        duration: float | None,
        has_audio: bool,
        asr: str | None = None,
        language: str | None = None,
    ) -> int:
        cursor = self._conn.execute(
            "INSERT INTO files (raw_path, path, kind, size, mtime_ns, sha256, duration, has_audio, indexed_at, asr, "
            "language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (path_key(path), display_path(path), kind.value, size, mtime_ns, sha256, duration, has_audio, now_text())
            + (asr, language),
        )
        return int(cursor.lastrowid or 0)

    def record_failure(self, path: Path, sha256: str, reason: str) -> None:
        self._conn.execute(
            "INSERT INTO failed_files (raw_path, path, sha256, reason, failed_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (raw_path) DO UPDATE SET path = excluded.path, sha256 = excluded.sha256,"
            " reason = excluded.reason, failed_at = excluded.failed_at",
            (path_key(path), display_path(path), sha256, reason, now_text()),
        )

    def clear_failure(self, path: Path) -> None:
        self._conn.execute("DELETE FROM failed_files WHERE raw_path = ?", (path_key(path),))

    def failures(self) -> dict[bytes, tuple[str, str, str]]:
        """raw path -> (display path, content hash, reason) of files that failed in an earlier run."""
        if self.schema_version() < FAILED_SCHEMA:
            return {}
        rows = self._conn.execute("SELECT raw_path, path, sha256, reason FROM failed_files ORDER BY path")
        return {bytes(r[0]): (r[1], r[2], r[3]) for r in rows}

    def move_file(self, file_id: int, new_path: Path, mtime_ns: int) -> None:
        self._conn.execute(
            "UPDATE files SET raw_path = ?, path = ?, mtime_ns = ? WHERE id = ?",
            (path_key(new_path), display_path(new_path), mtime_ns, file_id),
        )

    def touch_file(self, file_id: int, mtime_ns: int) -> None:
        self._conn.execute("UPDATE files SET mtime_ns = ? WHERE id = ?", (mtime_ns, file_id))

    def remove_file(self, file_id: int) -> list[int]:
        """Delete a file and its segments; returns the segment ids whose vectors must go too."""
        ids = [r[0] for r in self._conn.execute("SELECT id FROM segments WHERE file_id = ?", (file_id,))]
        self._conn.execute("DELETE FROM segments WHERE file_id = ?", (file_id,))
        self._conn.execute("DELETE FROM shots WHERE file_id = ?", (file_id,))
        self._conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return ids

    # -- shots --------------------------------------------------------------------------------------------

    def add_shots(self, file_id: int, shots: Sequence[tuple[float, float]]) -> None:
        self._conn.executemany(
            'INSERT INTO shots (file_id, start, "end") VALUES (?, ?, ?)', [(file_id, a, b) for a, b in shots]
        )

    def shots_of(self, file_ids: Iterable[int]) -> dict[int, list[tuple[float, float]]]:
        """Shots of each file, in time order; files without detected shots are absent."""
        found: dict[int, list[tuple[float, float]]] = {}
        if self.schema_version() < SHOTS_SCHEMA:
            return found  # an index written before shot detection, opened read-only (never migrated)
        wanted = sorted({int(i) for i in file_ids})
        for lo in range(0, len(wanted), 500):
            chunk = wanted[lo : lo + 500]
            sql = f'SELECT file_id, start, "end" FROM shots WHERE file_id IN ({",".join("?" * len(chunk))}) ORDER BY start'
            for file_id, start, end in self._conn.execute(sql, chunk):
                found.setdefault(file_id, []).append((float(start), float(end)))
        return found

    # -- segments -------------------------------------------------------------------------------------

    def add_segments(self, file_id: int, segments: Sequence[Segment]) -> list[int]:
        ids = []
        for seg in segments:
            cursor = self._conn.execute(
                'INSERT INTO segments (file_id, kind, start, "end", text, channel, language) '
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (file_id, seg.kind.value, seg.start, seg.end, seg.text, seg.channel, seg.language),
            )
            ids.append(int(cursor.lastrowid or 0))
        return ids

    def segments_of(self, file_id: int) -> list[SegmentRecord]:
        return list(self._select_segments("WHERE s.file_id = ?", (file_id,)))

    def segments_by_ids(self, ids: Iterable[int]) -> dict[int, SegmentRecord]:
        wanted = [int(i) for i in ids]
        found: dict[int, SegmentRecord] = {}
        # SQLite caps bound parameters; chunk to stay well under it.
        for lo in range(0, len(wanted), 500):
            chunk = wanted[lo : lo + 500]
            marks = ",".join("?" * len(chunk))
            for rec in self._select_segments(f"WHERE s.id IN ({marks})", chunk):
                found[rec.id] = rec
        return found

    def segment_spans(self) -> list[tuple[int, int, str, float | None, float | None]]:
        """(id, file id, kind, start, end) of every segment that has a file, in id order (a searcher's table)."""
        sql = 'SELECT s.id, s.file_id, s.kind, s.start, s."end" FROM segments s JOIN files f ON f.id = s.file_id'
        return self._conn.execute(sql + " ORDER BY s.id").fetchall()

    def segment_ids(self) -> list[int]:
        """Ids of the segments that have a CLIP vector in the store (ocr and audio segments have none there)."""
        sql = f"SELECT id FROM segments WHERE {_CLIP_KIND_SQL} ORDER BY id"
        return [r[0] for r in self._conn.execute(sql, _CLIP_KIND_VALUES)]

    def segment_ids_of_kinds(self, kinds: Iterable[SegmentKind]) -> list[int]:
        names = [k.value for k in kinds]
        marks = ",".join("?" * len(names))
        sql = f"SELECT id FROM segments WHERE kind IN ({marks}) ORDER BY id"
        return [r[0] for r in self._conn.execute(sql, names)]

    def speech_texts(self) -> tuple[list[int], list[str], list[str | None]]:
        """Ids, texts and languages (None: unknown) of every speech, on-screen text (ocr) and subtitle segment, for
        the keyword index."""
        language = "language" if self.schema_version() >= schema.LANGUAGE_SCHEMA else "NULL"
        rows = self._conn.execute(
            f"SELECT id, text, {language} FROM segments WHERE kind IN (?, ?, ?) AND text IS NOT NULL ORDER BY id",
            (SegmentKind.SPEECH.value, SegmentKind.OCR.value, SegmentKind.SUBTITLE.value),
        ).fetchall()
        return [int(r[0]) for r in rows], [str(r[1]) for r in rows], [r[2] for r in rows]

    # -- extra vector spaces (see migration 4) --------------------------------------------------------

    def add_space_vectors(self, space: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        rows = np.asarray(vectors, np.float32)
        self._conn.executemany(
            "INSERT INTO space_vectors (space, segment_id, vector) VALUES (?, ?, ?)",
            [(space, int(i), rows[n].tobytes()) for n, i in enumerate(ids)],
        )

    def space_vectors(self, space: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(segment ids, vectors) of one space; empty for an index written before spaces existed."""
        if self.schema_version() < SPACES_SCHEMA:
            return np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
        rows = self._conn.execute(
            "SELECT segment_id, vector FROM space_vectors WHERE space = ? ORDER BY segment_id", (space,)
        ).fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), dim)
        return ids, vectors

    def texts_without_space(self, space: str, kinds: Iterable[SegmentKind]) -> list[tuple[int, str]]:
        """(id, text) of segments of these kinds that have text but no vector in `space` (indexed before it existed)."""
        names = [k.value for k in kinds]
        sql = (
            f"SELECT s.id, s.text FROM segments s WHERE s.kind IN ({','.join('?' * len(names))}) AND s.text IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM space_vectors v WHERE v.space = ? AND v.segment_id = s.id) ORDER BY s.id"
        )
        return [(int(i), str(t)) for i, t in self._conn.execute(sql, [*names, space])]

    def space_vectors_of(self, file_id: int) -> dict[str, dict[int, np.ndarray]]:
        """space -> segment id -> vector, for one file (to copy it without embedding)."""
        found: dict[str, dict[int, np.ndarray]] = {}
        if self.schema_version() < SPACES_SCHEMA:
            return found
        sql = "SELECT v.space, v.segment_id, v.vector FROM space_vectors v JOIN segments s ON s.id = v.segment_id "
        for space, seg_id, blob in self._conn.execute(sql + "WHERE s.file_id = ?", (file_id,)):
            found.setdefault(space, {})[int(seg_id)] = np.frombuffer(blob, np.float32)
        return found

    def space_counts(self, file_id: int | None = None) -> dict[str, int]:
        if self.schema_version() < SPACES_SCHEMA:
            return {}
        sql = "SELECT v.space, COUNT(*) FROM space_vectors v"
        if file_id is None:
            rows = self._conn.execute(sql + " GROUP BY v.space")
        else:
            sql += " JOIN segments s ON s.id = v.segment_id WHERE s.file_id = ? GROUP BY v.space"
            rows = self._conn.execute(sql, (file_id,))
        return {str(space): int(n) for space, n in rows}

    def counts(self) -> dict[str, int]:
        counts = {k.value: 0 for k in SegmentKind}
        for kind, n in self._conn.execute("SELECT kind, COUNT(*) FROM segments GROUP BY kind"):
            counts[kind] = n
        return counts

    def file_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM files").fetchone()[0])

    # -- consistency checks (mmsearch check) ----------------------------------------------------------------

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Read one committed state throughout, also on a read-only connection while a writer commits."""
        self._conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def damage(self) -> str | None:
        """What SQLite's quick_check or a missing table says is wrong with the file; None when it is sound."""
        rows = [str(r[0]) for r in self._conn.execute("PRAGMA quick_check").fetchall()]
        if rows != ["ok"]:
            return "; ".join(rows[:3])
        have = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        wanted = ["manifest", "files", "segments"] + (["shots"] if self.schema_version() >= SHOTS_SCHEMA else [])
        missing = [t for t in wanted if t not in have]
        return f"table(s) {', '.join(missing)} missing" if missing else None

    def homeless_shot_files(self) -> list[int]:
        """File ids that shots name but no file row has (the shots a file id reused later would collide with)."""
        sql = "SELECT DISTINCT file_id FROM shots WHERE file_id NOT IN (SELECT id FROM files) ORDER BY file_id"
        return [int(r[0]) for r in self._conn.execute(sql)] if self.schema_version() >= SHOTS_SCHEMA else []

    def remove_shots_of(self, file_ids: Sequence[int]) -> None:
        self._conn.executemany("DELETE FROM shots WHERE file_id = ?", [(int(i),) for i in file_ids])

    def segment_owners(self) -> dict[int, int]:
        """Segment id → file id, for every segment with a CLIP vector (including any whose file row is gone)."""
        sql = f"SELECT id, file_id FROM segments WHERE {_CLIP_KIND_SQL}"
        return dict(self._conn.execute(sql, _CLIP_KIND_VALUES).fetchall())

    def remove_segments(self, ids: Sequence[int]) -> None:
        for lo in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[lo : lo + 500]]
            self._conn.execute(f"DELETE FROM segments WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def _select_segments(self, where: str, params: Sequence[object]) -> Iterator[SegmentRecord]:
        heard = "s.channel, s.language" if self.schema_version() >= schema.LANGUAGE_SCHEMA else "NULL, NULL"
        sql = (
            f'SELECT s.id, s.file_id, f.path, s.kind, s.start, s."end", s.text, {heard} '
            f"FROM segments s JOIN files f ON f.id = s.file_id {where}"
        )
        for row in self._conn.execute(sql, params):
            yield SegmentRecord(row[0], row[1], row[2], SegmentKind(row[3]), row[4], row[5], row[6], row[7], row[8])


def _file_record(row: Any) -> FileRecord:
    duration, asr, language = row[7], row[9], row[10]
    return FileRecord(
        *(int(row[0]), bytes(row[1]), str(row[2]), MediaKind(row[3]), int(row[4]), int(row[5]), str(row[6])),
        duration=None if duration is None else float(duration),
        has_audio=bool(row[8]),
        asr=None if asr is None else str(asr),
        language=None if language is None else str(language),
    )


def fs_path(record: FileRecord) -> Path:
    return Path(os.fsdecode(record.raw_path))


REPAIR_CATALOG_HINT = (
    "`mmsearch check --repair` salvages what can be read; the next `mmsearch index` re-embeds the rest"
)


def catalog_error(e: sqlite3.DatabaseError, path: Path) -> MMSearchError:
    """The domain error for an SQLite failure: a full disk, or a catalog that is damaged or unreadable."""
    text = str(e)
    if "disk is full" in text or "no space" in text.lower():
        return DiskFull(f"the disk holding {display_path(path.parent)} is full")
    if isinstance(e, sqlite3.OperationalError) and "locked" in text:
        return CorruptIndex(f"catalog {display_path(path)} is locked by another process ({text})")
    return CorruptIndex(f"catalog {display_path(path)} is damaged or unreadable: {text}", hint=REPAIR_CATALOG_HINT)


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: Catalog, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.IntegrityError:
            raise  # a constraint the caller asked for, not damage
        except sqlite3.DatabaseError as e:
            raise catalog_error(e, self.path) from e

    return wrapper  # type: ignore[return-value]


# A damaged page or a dropped table surfaces in whichever query touches it: every public method turns SQLite's
# exception into a one-line domain error instead of a traceback.
for _name, _member in list(vars(Catalog).items()):
    if not _name.startswith("_") and callable(_member) and _name != "snapshot":
        setattr(Catalog, _name, _guarded(_member))
