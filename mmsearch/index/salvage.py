"""Salvage a damaged catalog (a garbled page, a truncated file, a dropped table) into a fresh one.

SQLite reads a table in rowid order, and the writer inserts files, their segments and their shots in that
order too; so when a damaged page stops the reading of a table, the rows before it are sound and the file
being read (and every later one) may be incomplete. Salvage copies what reads, and names the first file id
whose rows may be incomplete, so that repair drops those files and the next `mmsearch index` embeds them again.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptIndex
from ..paths import display_path
from .catalog import Catalog

DAMAGED_SUFFIX = ".damaged"
# Tables copied, in order, and the column naming a row's file (None: the manifest).
TABLES: tuple[tuple[str, str | None], ...] = (
    ("manifest", None),
    ("files", "id"),
    ("segments", "file_id"),
    ("shots", "file_id"),
)


class Unsalvageable(CorruptIndex):
    """Not even the manifest reads: nothing says which model built the index."""


@dataclass(frozen=True)
class Salvage:
    copied: dict[str, int]  # rows copied per table
    lost_from_file: int | None  # files with this id or above may have lost rows; None: nothing lost
    kept_as: Path


def _connect_ro(path: Path) -> sqlite3.Connection:
    uri = f"file:{urllib.parse.quote(os.fsencode(path))}?mode=ro"
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})").fetchall()]


def _copy_table(
    src: sqlite3.Connection, dst: sqlite3.Connection, table: str, owner: str | None
) -> tuple[int, int | None]:
    """Copy readable rows; returns (rows copied, first file id that may have lost rows, or None)."""
    try:
        have = set(_columns(src, table))
    except sqlite3.DatabaseError:
        have = set()
    columns = [c for c in _columns(dst, table) if c in have]
    if not columns or (owner is not None and owner not in columns):
        return 0, 0  # the table is gone: every file may have lost its rows
    quoted = ", ".join(f'"{c}"' for c in columns)
    insert = f"INSERT OR IGNORE INTO {table} ({quoted}) VALUES ({', '.join('?' * len(columns))})"
    at = columns.index(owner) if owner else None
    copied, last_owner = 0, 0
    try:
        for row in src.execute(f"SELECT {quoted} FROM {table}"):
            dst.execute(insert, row)
            copied += 1
            if at is not None:
                last_owner = int(row[at])
    except sqlite3.DatabaseError:
        return copied, last_owner  # the file being read when the damage was hit may be incomplete
    return copied, None


def salvage_catalog(path: Path) -> Salvage:
    """Replace the damaged catalog at `path` by a fresh one holding every row that reads (the caller holds the
    write lock). The damaged file is kept beside it as `catalog.sqlite.damaged`."""
    fresh = path.with_name(path.name + ".salvage")
    for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
        leftover.unlink(missing_ok=True)
    Catalog.open(fresh, create=True).close()  # every table at the latest schema
    try:
        copied, lost = _copy_all(path, fresh)
    except BaseException:
        for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
            leftover.unlink(missing_ok=True)
        raise
    kept = set_aside(path)
    os.replace(fresh, path)
    return Salvage(copied, min(lost) if lost else None, kept)


def set_aside(path: Path) -> Path:
    """Move a damaged catalog (and its WAL) out of the way, kept for inspection as `catalog.sqlite.damaged`."""
    kept = path.with_name(path.name + DAMAGED_SUFFIX)
    os.replace(path, kept)
    for log_file in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        if log_file.exists():
            os.replace(log_file, Path(f"{kept}{log_file.name[len(path.name) :]}"))
    return kept


def _copy_all(path: Path, fresh: Path) -> tuple[dict[str, int], list[int]]:
    src, dst = _connect_ro(path), sqlite3.connect(fresh, isolation_level=None)
    copied: dict[str, int] = {}
    lost: list[int] = []
    try:
        dst.execute("BEGIN IMMEDIATE")
        for table, owner in TABLES:
            copied[table], lost_from = _copy_table(src, dst, table, owner)
            if lost_from is not None and owner is not None:
                lost.append(lost_from)
        model = dst.execute("SELECT value FROM manifest WHERE key = 'model'").fetchone()
        if model is None:
            dst.execute("ROLLBACK")
            raise Unsalvageable(f"catalog {display_path(path)} is damaged beyond salvage: its manifest cannot be read")
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()
    return copied, lost
