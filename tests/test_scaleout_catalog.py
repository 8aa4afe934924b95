"""The PostgreSQL catalog and the claims protocol, on a real PostgreSQL server (no Milvus needed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from mmsearch.index.catalog import Catalog
from mmsearch.index.catalog_pg import PG_SCHEMA_VERSION, PgCatalog, redact
from mmsearch.index.claims import SharedWork
from mmsearch.types import MediaFile, MediaKind, Segment, SegmentKind

pytest_plugins = ["conftest_scaleout"]


def _fill(catalog: Catalog) -> tuple[int, list[int]]:
    catalog.begin()
    file_id = catalog.add_file(Path("/m/a b.mp4"), MediaKind.VIDEO, 10, 123, "f" * 64, 6.25, True, "whisper")
    segments = [
        Segment(SegmentKind.FRAME, 0.0, 1.0),
        Segment(SegmentKind.FRAME, 1.0, 2.0),
        Segment(SegmentKind.SPEECH, 0.5, 1.7, "the red fox"),
    ]
    ids = catalog.add_segments(file_id, segments)
    catalog.add_shots(file_id, [(0.0, 1.5), (1.5, 6.25)])
    catalog.set_manifest({"model": "test:hash", "vectors_generation": "1"})
    catalog.commit()
    return file_id, ids


def _view(catalog: Catalog, file_id: int, ids: list[int]) -> tuple[object, ...]:
    records = [(r.kind, r.start, r.end, r.text, r.path) for r in catalog.segments_by_ids(ids).values()]
    file = catalog.files()[0]
    return (
        (file.raw_path, file.path, file.kind, file.size, file.mtime_ns, file.duration, file.has_audio, file.asr),
        sorted(records, key=repr),
        catalog.shots_of([file_id]),
        catalog.counts(),
        catalog.speech_texts()[1],
        catalog.file_count(),
        len(catalog.segment_ids_of_kinds([SegmentKind.FRAME])),
    )


def test_pg_catalog_answers_like_the_sqlite_catalog(pg_url: str, tmp_path: Path) -> None:
    lite = Catalog.open(tmp_path / "catalog.sqlite", create=True)
    pg = PgCatalog.open_url(pg_url)
    assert pg.schema_version() == PG_SCHEMA_VERSION
    (lite_file, lite_ids), (pg_file, pg_ids) = _fill(lite), _fill(pg)
    assert _view(pg, pg_file, pg_ids) == _view(lite, lite_file, lite_ids)
    assert pg.manifest()["model"] == "test:hash"

    pg.begin()
    pg.move_file(pg_file, Path("/m/moved.mp4"), 999)
    assert sorted(pg.remove_file(pg_file)) == sorted(pg_ids)
    pg.rollback()  # nothing of an uncommitted transaction is kept
    assert pg.file_count() == 1 and pg.files()[0].path == "/m/a b.mp4"
    lite.close()
    pg.close()


def test_segment_ids_are_unique_across_concurrent_writers_and_generation_counts_commits(pg_url: str) -> None:
    PgCatalog.open_url(pg_url).close()
    writers = [PgCatalog.open_url(pg_url) for _ in range(3)]
    for w in writers:
        w.begin()  # three open transactions at once, as three workers between commits
    ids: list[int] = []
    for n, w in enumerate(writers):
        file_id = w.add_file(Path(f"/m/{n}.mp4"), MediaKind.VIDEO, 1, 1, str(n), 1.0, False)
        ids += w.add_segments(file_id, [Segment(SegmentKind.FRAME, float(t), t + 1.0) for t in range(50)])
    for w in writers:
        w.set_manifest({"vectors_generation": "1"})  # each worker's own count is 1: the catalog counts commits
        w.commit()
    assert len(set(ids)) == 150
    reader = PgCatalog.open_url(pg_url, readonly=True)
    assert sorted(reader.segment_ids()) == sorted(ids)
    assert reader.manifest()["vectors_generation"] == "3"
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        reader.set_manifest({"model": "x"})
    for c in (*writers, reader):
        c.close()


def _media(n: int) -> list[MediaFile]:
    return [MediaFile(Path(f"/m/{i:02d}.mp4"), MediaKind.VIDEO, size=1, mtime_ns=1) for i in range(n)]


def test_claims_split_files_and_a_dead_workers_claims_expire(pg_url: str) -> None:
    PgCatalog.open_url(pg_url).close()
    files = _media(6)
    a, b = SharedWork(pg_url, ttl=1.0), SharedWork(pg_url, ttl=1.0)
    a.enqueue([(m, "sha") for m in files])
    b.enqueue([(m, "sha") for m in files])  # a second worker's identical plan queues nothing twice
    got_a, got_b = a.claimed(files), b.claimed(files)
    mine = [next(got_a), next(got_b), next(got_a), next(got_b)]
    assert len({m.path for m in mine}) == 4  # SKIP LOCKED + the claim: never the same file twice

    a._stop.set()  # a "dies": no more heartbeats, its two claims stay in the table
    a._heartbeat.join()
    rest = list(got_b)
    assert {m.path for m in rest} == {m.path for m in files[4:]}  # b does not wait for a's files...
    time.sleep(1.2)
    c = SharedWork(pg_url, ttl=1.0)
    taken = list(c.claimed(files))
    assert {m.path for m in taken} == {mine[0].path, mine[2].path}  # ...which are free once expired
    for w in (a, b, c):
        w.close()


def test_heartbeat_keeps_claims_and_the_plan_lock_serialises_workers(pg_url: str) -> None:
    PgCatalog.open_url(pg_url).close()
    files = _media(2)
    a, b = SharedWork(pg_url, ttl=0.8), SharedWork(pg_url, ttl=0.8)
    a.enqueue([(m, "sha") for m in files])
    first = next(a.claimed(files))
    time.sleep(1.5)  # past the ttl, but a's heartbeat (every ttl / 4) renewed it
    assert [m.path for m in b.claimed(files)] == [files[1].path] and first == files[0]

    order: list[str] = []

    def plan_b() -> None:
        with b.exclusive():
            order.append("b")

    with a.exclusive():
        thread = threading.Thread(target=plan_b)
        thread.start()
        time.sleep(0.3)
        order.append("a")
    thread.join()
    assert order == ["a", "b"]
    for w in (a, b):
        w.close()


def test_redact_hides_the_password() -> None:
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_catalog_url_needs_a_milvus_server_and_an_unreachable_catalog_is_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmsearch.cli.app import app

    runner = CliRunner()
    url = "postgresql://nobody@127.0.0.1:1/none"
    result = runner.invoke(app, ["index", str(tmp_path), "--catalog", url, "--model", "test:hash"])
    assert result.exit_code == 2 and "--catalog URL needs --backend milvus --uri http://" in result.output
    lite = ["--backend", "milvus", "--uri", str(tmp_path / "m.db")]
    result = runner.invoke(app, ["index", str(tmp_path), "--catalog", url, "--model", "test:hash", *lite])
    assert result.exit_code == 2 and "--catalog URL needs" in result.output  # milvus-lite is one host's file
    result = runner.invoke(app, ["query", "a dog", "--catalog", url])
    assert result.exit_code != 0 and "cannot reach the catalog at postgresql://nobody@127.0.0.1:1/none" in result.output
    assert "Traceback" not in result.output
