"""SQLite catalog beside the vector index: files, segments and the manifest, with numbered migrations.

Segment ids are the vector ids in the store, so catalog and vectors can be checked against each other.
The catalog runs in WAL mode: a writer holds one transaction between commits while queries keep reading
the last committed state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CorruptIndex, SchemaTooNew
from ..paths import display_path, path_key
from ..types import MediaKind, Segment, SegmentKind

# Each entry is applied once, in order, and recorded in schema_migrations; never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        id INTEGER PRIMARY KEY,
        raw_path BLOB UNIQUE NOT NULL,
        path TEXT NOT NULL,
        kind TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        duration REAL,
        has_audio INTEGER NOT NULL DEFAULT 0,
        indexed_at TEXT NOT NULL
    );
    CREATE INDEX files_sha256 ON files (sha256);
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        start REAL,
        "end" REAL,
        text TEXT
    );
    CREATE INDEX segments_file ON segments (file_id);
    """,
    # 2: shots found by shot boundary detection, one row per shot of a video: [start, end) between cuts.
    """
    CREATE TABLE shots (
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        start REAL NOT NULL,
        "end" REAL NOT NULL,
        PRIMARY KEY (file_id, start)
    );
    """,
    # 3: which ASR transcribed a file's audio (NULL: not transcribed), so a later run with ASR can add speech.
    """
    ALTER TABLE files ADD COLUMN asr TEXT;
    """,
    # 4: files that failed to decode (crash, timeout, unreadable), with their content hash: not retried until
    # their content changes or `index --retry-failed`.
    """
    CREATE TABLE failed_files (
        raw_path BLOB PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        reason TEXT NOT NULL,
        failed_at TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
# The migration that added the shots table.
SHOTS_SCHEMA = 2
ASR_SCHEMA = 3
FAILED_SCHEMA = 4


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


@dataclass(frozen=True)
class SegmentRecord:
    id: int
    file_id: int
    path: str
    kind: SegmentKind
    start: float | None
    end: float | None
    text: str | None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Catalog:
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
                if catalog._check_version() == 0:
                    conn.close()
                    raise CorruptIndex(
                        f"catalog {display_path(path)} is empty: the first index run into it stopped before committing",
                        hint="run `mmsearch index PATH` again",
                    )
            else:
                catalog._migrate()
        except sqlite3.DatabaseError as e:
            raise CorruptIndex(f"catalog {display_path(path)} is unreadable: {e}") from e
        return catalog

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
                self._conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, _now()))
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
        return f"id, raw_path, path, kind, size, mtime_ns, sha256, duration, has_audio, {asr}"

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
    ) -> int:
        cursor = self._conn.execute(
            "INSERT INTO files (raw_path, path, kind, size, mtime_ns, sha256, duration, has_audio, indexed_at, asr) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                path_key(path),
                display_path(path),
                kind.value,
                size,
                mtime_ns,
                sha256,
                duration,
                has_audio,
                _now(),
                asr,
            ),
        )
        return int(cursor.lastrowid or 0)

    def record_failure(self, path: Path, sha256: str, reason: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO failed_files (raw_path, path, sha256, reason, failed_at) VALUES (?, ?, ?, ?, ?)",
            (path_key(path), display_path(path), sha256, reason, _now()),
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
                'INSERT INTO segments (file_id, kind, start, "end", text) VALUES (?, ?, ?, ?, ?)',
                (file_id, seg.kind.value, seg.start, seg.end, seg.text),
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

    def segment_ids(self) -> list[int]:
        return [r[0] for r in self._conn.execute("SELECT id FROM segments ORDER BY id")]

    def segment_ids_of_kinds(self, kinds: Iterable[SegmentKind]) -> list[int]:
        names = [k.value for k in kinds]
        marks = ",".join("?" * len(names))
        sql = f"SELECT id FROM segments WHERE kind IN ({marks}) ORDER BY id"
        return [r[0] for r in self._conn.execute(sql, names)]

    def speech_texts(self) -> tuple[list[int], list[str]]:
        """Ids and transcripts of every speech segment, for the keyword index."""
        rows = self._conn.execute(
            "SELECT id, text FROM segments WHERE kind = ? AND text IS NOT NULL ORDER BY id", (SegmentKind.SPEECH.value,)
        ).fetchall()
        return [int(r[0]) for r in rows], [str(r[1]) for r in rows]

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

    def segment_owners(self) -> dict[int, int]:
        """Segment id → file id, for every segment (including any whose file row is gone)."""
        return dict(self._conn.execute("SELECT id, file_id FROM segments").fetchall())

    def remove_segments(self, ids: Sequence[int]) -> None:
        for lo in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[lo : lo + 500]]
            self._conn.execute(f"DELETE FROM segments WHERE id IN ({','.join('?' * len(chunk))})", chunk)

    def _select_segments(self, where: str, params: Sequence[object]) -> Iterator[SegmentRecord]:
        sql = (
            'SELECT s.id, s.file_id, f.path, s.kind, s.start, s."end", s.text '
            f"FROM segments s JOIN files f ON f.id = s.file_id {where}"
        )
        for row in self._conn.execute(sql, params):
            yield SegmentRecord(row[0], row[1], row[2], SegmentKind(row[3]), row[4], row[5], row[6])


def _file_record(row: Any) -> FileRecord:
    return FileRecord(
        id=int(row[0]),
        raw_path=bytes(row[1]),
        path=str(row[2]),
        kind=MediaKind(row[3]),
        size=int(row[4]),
        mtime_ns=int(row[5]),
        sha256=str(row[6]),
        duration=None if row[7] is None else float(row[7]),
        has_audio=bool(row[8]),
        asr=None if row[9] is None else str(row[9]),
    )


def fs_path(record: FileRecord) -> Path:
    return Path(os.fsdecode(record.raw_path))
