"""`mmsearch check [--repair]`, `mmsearch remove`, and catalog migrations on real (tiny) indexes."""

from __future__ import annotations

import fcntl
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from index_state import TINY, catalog_segment_ids, index_state
from PIL import Image
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.index import catalog as catalog_mod
from mmsearch.stores.faiss_files import file_checksum
from mmsearch.stores.faiss_store import FaissStore

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def make_images(folder: Path, names: list[str]) -> list[Path]:
    paths = []
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 255, (TINY[1], TINY[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def index(folder: Path, index_dir: Path) -> dict:
    code, out, err = run("index", str(folder), "--index", str(index_dir), "--model", "test:hash", "--no-asr", "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "media"
    make_images(folder, ["a.png", "b.png", "sub/c.png", "subway/d.png"])
    index_dir = tmp_path / "idx"
    index(folder, index_dir)
    return folder, index_dir


def live(index_dir: Path) -> Path:
    return max(index_dir.glob("vectors-*.faiss"))


def edit_vectors(index_dir: Path, add_ids: list[int] = (), remove_ids: list[int] = ()) -> None:  # type: ignore[assignment]
    """Tamper with the live generation behind the catalog's back."""
    store = FaissStore.load(live(index_dir), device="cpu")
    if add_ids:
        store.add(np.asarray(add_ids), np.ones((len(add_ids), store.dim), np.float32) / 8)
    store.remove(list(remove_ids))
    store.save(live(index_dir))
    # A disagreement written by a faulty writer, not disk damage: the manifest records the new file's checksum.
    conn = sqlite3.connect(index_dir / "catalog.sqlite")
    conn.execute("UPDATE manifest SET value = ? WHERE key = 'vectors_checksum'", (file_checksum(live(index_dir)),))
    conn.commit()
    conn.close()


def check(index_dir: Path, *extra: str) -> tuple[int, dict]:
    code, out, _ = run("check", "--index", str(index_dir), "--json", *extra)
    return code, json.loads(out)


# -- check --------------------------------------------------------------------------------------------


def test_clean_index_checks_ok(built: tuple[Path, Path]) -> None:
    _, index_dir = built
    code, out, _ = run("check", "--index", str(index_dir))
    assert code == 0 and out.startswith("ok: 4 file(s), 4 segment(s) (image 4), vectors clip 4,"), out
    code, report = check(index_dir)
    assert code == 0 and report["ok"] and report["problems"] == [] and report["schema_version"] >= 1


def test_orphan_vector_found_and_dropped(built: tuple[Path, Path]) -> None:
    _, index_dir = built
    edit_vectors(index_dir, add_ids=[9999])
    code, out, err = run("check", "--index", str(index_dir))
    assert code == 1 and "1 vector(s) without a segment: ids 9999 (fixable with --repair)" in err
    code, report = check(index_dir, "--repair")
    assert code == 0 and report["vectors"] == 4 and report["repaired"]
    assert check(index_dir) == (0, report | {"repaired": []})


def test_segment_without_vector_is_dropped_then_reembedded(built: tuple[Path, Path]) -> None:
    folder, index_dir = built
    before = index_state(index_dir)
    victim = catalog_segment_ids(index_dir)[0]
    edit_vectors(index_dir, remove_ids=[victim])
    # Files are decoded in parallel, so which file owns the first segment id is not fixed: ask the catalog.
    conn = sqlite3.connect(index_dir / "catalog.sqlite")
    (owner,) = conn.execute(
        "SELECT f.path FROM segments s JOIN files f ON f.id = s.file_id WHERE s.id = ?", (victim,)
    ).fetchone()
    conn.close()
    name = Path(owner).name
    code, out, err = run("check", "--index", str(index_dir))
    assert code == 1 and f"{name}: 1 segment(s) without a vector" in err
    code, report = check(index_dir, "--repair")
    assert code == 0 and report["files"] == 3 and any(name in line for line in report["repaired"])
    again = index(folder, index_dir)
    assert again["embedded"] == 1 and again["new_files"] == 1
    assert index_state(index_dir).files == before.files and check(index_dir)[0] == 0


def test_duplicate_vector_ids_are_repaired(built: tuple[Path, Path]) -> None:
    folder, index_dir = built
    edit_vectors(index_dir, add_ids=[catalog_segment_ids(index_dir)[1]])
    code, report = check(index_dir)
    assert code == 1 and [p["code"] for p in report["problems"]] == ["duplicate-vectors"]
    assert check(index_dir, "--repair")[0] == 0
    assert index(folder, index_dir)["embedded"] == 1 and check(index_dir)[0] == 0


def test_stray_files_are_reported_and_deleted(built: tuple[Path, Path]) -> None:
    _, index_dir = built
    stray = [index_dir / "vectors-99999999.faiss", index_dir / "vectors-00000003.faiss.tmp"]
    for path in stray:
        path.write_bytes(b"left by a killed writer")
    code, report = check(index_dir)
    assert code == 1 and {p["code"] for p in report["problems"]} == {"stray-file"} and len(report["problems"]) == 2
    code, report = check(index_dir, "--repair")
    assert code == 0 and not any(p.exists() for p in stray)


def test_missing_vectors_file_is_unusable_until_repaired(built: tuple[Path, Path]) -> None:
    folder, index_dir = built
    want = index_state(index_dir).files
    live(index_dir).unlink()
    code, out, err = run("check", "--index", str(index_dir))
    assert code == 2 and "is missing; repair recovers what the previous generation holds" in err
    code, report = check(index_dir, "--repair")
    assert code == 0 and report["files"] == 0 and report["vectors"] == 0
    assert index(folder, index_dir)["embedded"] == 4 and index_state(index_dir).files == want


def test_stale_files_are_reported_but_not_a_problem(built: tuple[Path, Path]) -> None:
    folder, index_dir = built
    (folder / "b.png").unlink()
    code, out, _ = run("check", "--index", str(index_dir))
    assert code == 0 and f"stale: {folder / 'b.png'}: indexed but no longer on disk" in out


def test_incomplete_manifest_and_missing_index_exit_2(built: tuple[Path, Path], tmp_path: Path) -> None:
    _, index_dir = built
    assert run("check", "--index", str(tmp_path / "nowhere"))[0] == 2
    conn = sqlite3.connect(index_dir / "catalog.sqlite")
    conn.execute("DELETE FROM manifest WHERE key = 'dim'")
    conn.commit()
    conn.close()
    code, out, err = run("check", "--index", str(index_dir))
    assert code == 2 and "manifest lacks dim" in err
    assert run("check", "--repair", "--index", str(index_dir))[0] == 2  # nothing to rebuild it from


def test_repair_refused_while_a_writer_holds_the_lock(built: tuple[Path, Path]) -> None:
    _, index_dir = built
    edit_vectors(index_dir, add_ids=[9999])
    with open(index_dir / "write.lock", "ab") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        code, out, err = run("check", "--index", str(index_dir))
        assert code == 1 and "a writer is indexing now" in out
        code, _, err = run("check", "--repair", "--index", str(index_dir))
        assert code == 2 and "being written by another mmsearch process" in err


# -- remove -------------------------------------------------------------------------------------------


def test_remove_a_file_and_a_folder(built: tuple[Path, Path]) -> None:
    folder, index_dir = built
    code, out, _ = run("remove", str(folder / "a.png"), "--index", str(index_dir), "--json")
    assert code == 0 and json.loads(out) | {"index": ""} == {
        "index": "", "removed_files": 1, "removed_segments": 1, "files": 3, "segments": 3, "failed": [],
    }  # fmt: skip
    # A folder takes everything under it, and not a sibling whose name merely starts the same (sub vs subway).
    code, out, _ = run("remove", str(folder / "sub"), "--index", str(index_dir))
    assert code == 0 and "removed 1 file(s), 1 segment(s); index now holds 2 file(s)" in out
    state = index_state(index_dir)
    assert sorted(Path(p.decode()).name for p in state.files) == ["b.png", "d.png"]
    assert check(index_dir)[0] == 0
    code, out, _ = run("query", "--image", str(folder / "a.png"), "--index", str(index_dir), "--json")
    assert all(not r["path"].endswith("a.png") for r in json.loads(out)["results"])


def test_remove_path_not_in_index_exit_1_and_missing_index_exit_2(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, index_dir = built
    code, _, err = run("remove", str(folder / "nope.png"), str(folder / "b.png"), "--index", str(index_dir))
    assert code == 1 and f"{folder / 'nope.png'}: not in the index" in err
    assert index_state(index_dir).files.keys() == {
        str(folder / n).encode() for n in ("a.png", "sub/c.png", "subway/d.png")
    }
    code, _, err = run("remove", str(folder), "--index", str(tmp_path / "none"))
    assert code == 2 and "no index at" in err


def test_removed_file_gone_from_disk_stays_gone(built: tuple[Path, Path]) -> None:
    folder, index_dir = built
    (folder / "b.png").unlink()
    assert run("remove", str(folder / "b.png"), "--index", str(index_dir))[0] == 0
    summary = index(folder, index_dir)
    assert (summary["embedded"], summary["removed_files"], summary["files"]) == (0, 0, 3)


# -- migrations ---------------------------------------------------------------------------------------

NEXT_MIGRATION = "ALTER TABLE files ADD COLUMN note TEXT;\nCREATE INDEX files_kind ON files (kind);"


def test_older_schema_is_upgraded_in_place(built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """An index written at schema N meets an mmsearch whose schema is N+1 (one more migration)."""
    folder, index_dir = built
    before = index_state(index_dir)
    current = catalog_mod.SCHEMA_VERSION
    monkeypatch.setattr(catalog_mod, "MIGRATIONS", (*catalog_mod.MIGRATIONS, NEXT_MIGRATION))
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", current + 1)
    code, report = check(index_dir)
    assert code == 1 and [p["code"] for p in report["problems"]] == ["old-schema"]
    code, out, _ = run("query", "--image", str(folder / "a.png"), "--index", str(index_dir), "--json")
    assert code == 0 and json.loads(out)["results"]  # readers use the older schema as it is
    assert index(folder, index_dir)["embedded"] == 0  # the writer upgrades it, keeping everything
    conn = sqlite3.connect(index_dir / "catalog.sqlite")
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    columns = [row[1] for row in conn.execute("PRAGMA table_info(files)")]
    conn.close()
    assert versions == list(range(1, current + 2)) and "note" in columns
    assert index_state(index_dir).files == before.files and check(index_dir)[0] == 0


def test_check_repair_upgrades_an_older_schema(built: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, index_dir = built
    monkeypatch.setattr(catalog_mod, "MIGRATIONS", (*catalog_mod.MIGRATIONS, NEXT_MIGRATION))
    monkeypatch.setattr(catalog_mod, "SCHEMA_VERSION", len(catalog_mod.MIGRATIONS))
    code, report = check(index_dir, "--repair")
    assert code == 0 and report["schema_version"] == len(catalog_mod.MIGRATIONS)


def test_newer_schema_is_refused_by_every_command(built: tuple[Path, Path]) -> None:
    folder, index_dir = built
    conn = sqlite3.connect(index_dir / "catalog.sqlite")
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'from the future')", (catalog_mod.SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    for args in (
        ["query", "red"],
        ["info"],
        ["index", str(folder), "--model", "test:hash", "--no-asr"],
        ["check"],
        ["remove", str(folder / "a.png")],
    ):
        code, out, err = run(*args, "--index", str(index_dir))
        assert code == 2 and "is newer than this mmsearch understands" in err, args
    # The refused writer let go of its lock: a second refused attempt gets the same message, not "locked".
    code, _, err = run("index", str(folder), "--index", str(index_dir), "--model", "test:hash", "--no-asr")
    assert code == 2 and "newer than" in err
