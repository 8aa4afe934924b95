from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mmsearch.errors import CorruptIndex, SchemaTooNew
from mmsearch.index.catalog import MIGRATIONS, SCHEMA_VERSION, Catalog
from mmsearch.types import MediaKind, Segment, SegmentKind


def test_migrations_are_applied_once_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    Catalog.open(path, create=True).close()
    cat = Catalog.open(path)  # second open must not re-run migrations
    assert cat.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    rows = sqlite3.connect(path).execute("SELECT version FROM schema_migrations").fetchall()
    assert rows == [(i,) for i in range(1, SCHEMA_VERSION + 1)]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    Catalog.open(path, create=True).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'future')", (SCHEMA_VERSION + 1,))
    conn.commit()
    with pytest.raises(SchemaTooNew):
        Catalog.open(path)
    with pytest.raises(SchemaTooNew):
        Catalog.open(path, readonly=True)


def test_garbage_catalog_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CorruptIndex):
        Catalog.open(path)


def test_files_segments_roundtrip_with_non_utf8_name(tmp_path: Path) -> None:
    cat = Catalog.open(tmp_path / "c.sqlite", create=True)
    weird = tmp_path / b"caf\xe9.mp4".decode("utf-8", "surrogateescape")
    cat.begin()
    fid = cat.add_file(weird, MediaKind.VIDEO, 10, 5, "abc", 3.0, True)
    ids = cat.add_segments(
        fid, [Segment(SegmentKind.FRAME, 0.0, 1.0), Segment(SegmentKind.SPEECH, 0.5, 2.0, "hello there")]
    )
    cat.commit()
    rec = cat.files()[0]
    assert rec.raw_path.endswith(b"caf\xe9.mp4")
    assert rec.path.endswith("caf\\xe9.mp4")  # printable form
    segs = cat.segments_by_ids(ids)
    assert [segs[i].kind for i in ids] == [SegmentKind.FRAME, SegmentKind.SPEECH]
    assert segs[ids[1]].text == "hello there"
    assert cat.counts() == {"frame": 1, "speech": 1, "image": 0, "ocr": 0, "audio": 0, "subtitle": 0, "face": 0}
    cat.begin()
    assert sorted(cat.remove_file(fid)) == sorted(ids)
    cat.commit()
    assert cat.file_count() == 0 and cat.segment_ids() == []
