"""Corruption suite: every damage to vectors, catalog or manifest ends in a correct answer or one `error:` line
with exit 2, and `check --repair` followed by `mmsearch index` gives an index equal to a fresh one."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from index_state import catalog_segment_ids, index_state, make_pool
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.stores.faiss_store import FaissStore

runner = CliRunner()
pytestmark = pytest.mark.slow  # about 2 s per case (index copies, CLI runs, a re-index each)
PAGE = 4096


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def index(media: Path, index_dir: Path) -> tuple[int, dict]:
    code, out, err = run("index", str(media), "--index", str(index_dir), "--model", "test:hash", "--no-asr", "--json")
    return code, (json.loads(out) if code == 0 else {"error": err})


def answer(index_dir: Path) -> tuple[int, object]:
    """What a user sees: the query's results (JSON) and info's counts; or the exit code of a refusal."""
    code, out, err = run("query", "red", "--index", str(index_dir), "--json", "-k", "20", "--fusion", "rrf")
    if code != 0:
        return code, err
    results = [(r["path"], r["kind"], r["start"], round(r["score"], 5)) for r in json.loads(out)["results"]]
    return code, results


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Tiny media (4 images, 3 videos) indexed in two runs, so that a previous generation exists."""
    root = tmp_path_factory.mktemp("corruption")
    media = root / "media"
    pool = make_pool(root / "pool")
    (media / "first").mkdir(parents=True)
    for path in pool[:3]:
        shutil.copy(path, media / "first" / path.name)
    index_dir = root / "fresh"
    assert index(media, index_dir)[0] == 0
    for path in pool[3:]:
        shutil.copy(path, media / path.name)
    assert index(media, index_dir)[0] == 0
    return media, index_dir


def damaged_copy(fresh: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "damaged"
    shutil.copytree(fresh[1], copy)
    return copy


def live_vectors(index_dir: Path) -> Path:
    return max(index_dir.glob("vectors-*.faiss"))


def set_manifest(key: str, value: str) -> Callable[[Path], None]:
    def damage(index_dir: Path) -> None:
        conn = sqlite3.connect(index_dir / "catalog.sqlite")
        conn.execute("UPDATE manifest SET value = ? WHERE key = ?", (value, key))
        conn.commit()
        conn.close()

    return damage


def previous_generation(index_dir: Path) -> None:
    generation = int(live_vectors(index_dir).name[len("vectors-") : -len(".faiss")])
    set_manifest("vectors_generation", str(generation - 1))(index_dir)


def truncate_vectors(index_dir: Path) -> None:
    path = live_vectors(index_dir)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def zero_vectors(index_dir: Path) -> None:
    path = live_vectors(index_dir)
    path.write_bytes(bytes(path.stat().st_size))


def garble_vectors(index_dir: Path) -> None:
    """4 KiB of random bytes in the middle of the vector data: the file still loads, its scores are garbage."""
    path = live_vectors(index_dir)
    data = bytearray(path.read_bytes())
    at = len(data) // 3
    data[at : at + PAGE] = random.Random(4).randbytes(min(PAGE, len(data) - at))
    path.write_bytes(bytes(data))


def other_dimension(index_dir: Path) -> None:
    """A well-formed vector file of another dimension, with the same ids, in place of the live one."""
    path = live_vectors(index_dir)
    ids = FaissStore.load(path, device="cpu").ids()
    other = FaissStore.create(16, device="cpu")
    vectors = np.random.default_rng(0).normal(size=(len(ids), 16)).astype(np.float32)
    other.add(ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    other.save(path)


def missing_vectors(index_dir: Path) -> None:
    live_vectors(index_dir).unlink()


def truncate_catalog(index_dir: Path) -> None:
    path = index_dir / "catalog.sqlite"
    path.write_bytes(path.read_bytes()[: (path.stat().st_size // PAGE // 2) * PAGE])


def garble_page(which: int) -> Callable[[Path], None]:
    def damage(index_dir: Path) -> None:
        path = index_dir / "catalog.sqlite"
        data = bytearray(path.read_bytes())
        pages = len(data) // PAGE
        page = which if which >= 0 else pages + which
        data[page * PAGE + 8 : (page + 1) * PAGE] = random.Random(page).randbytes(PAGE - 8)
        path.write_bytes(bytes(data))

    return damage


def garble_table_page(table: str) -> Callable[[Path], None]:
    """Garble the root page of `table` (which holds rows): the file's last page may be an empty table's root, whose
    bytes past the header are free space that no reader (and so no check) ever looks at."""

    def damage(index_dir: Path) -> None:
        conn = sqlite3.connect(index_dir / "catalog.sqlite")
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        conn.close()
        garble_page(int(root) - 1)(index_dir)

    return damage


def drop_table(table: str) -> Callable[[Path], None]:
    def damage(index_dir: Path) -> None:
        conn = sqlite3.connect(index_dir / "catalog.sqlite")
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
        conn.close()

    return damage


CASES: dict[str, Callable[[Path], None]] = {
    "vectors-truncated": truncate_vectors,
    "vectors-zeroed": zero_vectors,
    "vectors-garbled-4k": garble_vectors,
    "vectors-other-dimension": other_dimension,
    "vectors-missing": missing_vectors,
    "catalog-truncated": truncate_catalog,
    "catalog-page-2-garbled": garble_page(1),
    "catalog-segments-page-garbled": garble_table_page("segments"),
    "catalog-segments-dropped": drop_table("segments"),
    "catalog-files-dropped": drop_table("files"),
    "catalog-shots-dropped": drop_table("shots"),
    "manifest-dim-wrong": set_manifest("dim", "999"),
    "manifest-dim-not-a-number": set_manifest("dim", "sixty-four"),
    "manifest-index-type-wrong": set_manifest("index_type", "hnsw"),
    "manifest-index-type-unknown": set_manifest("index_type", "annoy"),
    "manifest-index-params-garbled": set_manifest("index_params", "nlist=x,nprobe=?"),
    "manifest-generation-previous": previous_generation,
    "manifest-generation-absent-file": set_manifest("vectors_generation", "77"),
    "manifest-checksum-wrong": set_manifest("vectors_checksum", "sha256:" + "0" * 64),
    "manifest-backend-unknown": set_manifest("backend", "annoy"),
}


def assert_correct_or_one_line(code: int, got: object, want: object) -> None:
    if code == 0:
        assert got == want
    else:
        lines = [line for line in str(got).splitlines() if not line.startswith("WARNING: model test:hash")]
        errors = [line for line in lines if line.startswith("error:")]
        assert code == 2 and len(errors) == 1 and len(lines) <= 2, got  # the error and its hint


@pytest.mark.parametrize("case", list(CASES))
def test_damage_gives_a_correct_answer_or_one_line_and_repair_restores(
    case: str, fresh: tuple[Path, Path], tmp_path: Path
) -> None:
    media, fresh_dir = fresh
    want_answer, want_state = answer(fresh_dir), index_state(fresh_dir)
    assert want_answer[0] == 0 and want_answer[1]
    index_dir = damaged_copy(fresh, tmp_path)
    CASES[case](index_dir)

    code, got = answer(index_dir)
    assert_correct_or_one_line(code, got, want_answer[1])
    code, out, err = run("info", "--index", str(index_dir), "--json")
    if code == 0:
        assert json.loads(out)["files"] == len(want_state.files)
    else:
        assert_correct_or_one_line(code, err, None)
    code, out, err = run("check", "--index", str(index_dir))
    assert code in (1, 2) and "problem:" in err, (code, out, err)  # every case here is a fault check must see

    code, out, err = run("check", "--repair", "--index", str(index_dir))
    assert code == 0 and "repaired:" in out, (out, err)
    assert index(media, index_dir)[0] == 0
    got_state = index_state(index_dir)
    assert got_state.files == want_state.files and got_state.vectors == want_state.vectors
    assert list(got_state.vector_ids) == catalog_segment_ids(index_dir)
    assert answer(index_dir) == want_answer
    assert run("check", "--index", str(index_dir))[0] == 0


@pytest.mark.parametrize("case", ["catalog-page-2-garbled", "vectors-garbled-4k", "manifest-dim-wrong"])
def test_writer_on_a_damaged_index_refuses_in_one_line(case: str, fresh: tuple[Path, Path], tmp_path: Path) -> None:
    media, _ = fresh
    index_dir = damaged_copy(fresh, tmp_path)
    CASES[case](index_dir)
    code, result = index(media, index_dir)
    assert_correct_or_one_line(code, result.get("error", ""), None)
    assert code == 2 and "check --repair" in result["error"]


def test_lost_live_generation_is_recovered_from_the_previous_one(fresh: tuple[Path, Path], tmp_path: Path) -> None:
    media, fresh_dir = fresh
    index_dir = damaged_copy(fresh, tmp_path)
    missing_vectors(index_dir)
    code, out, _ = run("check", "--repair", "--index", str(index_dir))
    assert code == 0 and "recovered the vectors of the previous generation" in out
    # Only the files of the last run were dropped: the first run's three files keep their vectors.
    assert out.count("dropped ") == 4 and "first/" not in "".join(x for x in out.splitlines() if "dropped" in x)
    summary = index(media, index_dir)[1]
    assert summary["new_files"] == 4 and summary["unchanged_files"] == 3
    assert index_state(index_dir).files == index_state(fresh_dir).files


def test_orphan_segments_are_repaired_in_one_pass(fresh: tuple[Path, Path], tmp_path: Path) -> None:
    media, fresh_dir = fresh
    index_dir = damaged_copy(fresh, tmp_path)
    conn = sqlite3.connect(index_dir / "catalog.sqlite")  # foreign keys off: the segments stay behind
    conn.execute("DELETE FROM files WHERE id = (SELECT MIN(id) FROM files)")
    conn.commit()
    conn.close()
    code, report = check_json(index_dir)
    assert code == 1 and "orphan-segments" in {p["code"] for p in report["problems"]}
    code, report = check_json(index_dir, "--repair")
    assert code == 0 and report["problems"] == []
    assert index(media, index_dir)[1]["new_files"] == 1
    assert index_state(index_dir).files == index_state(fresh_dir).files
    assert check_json(index_dir)[0] == 0


def check_json(index_dir: Path, *extra: str) -> tuple[int, dict]:
    code, out, _ = run("check", "--index", str(index_dir), "--json", *extra)
    return code, json.loads(out)


@pytest.mark.parametrize("stillborn", ["empty-file", "schema-only"])
def test_kill_as_the_catalog_is_created_does_not_block_the_next_run(
    stillborn: str, fresh: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL right after the catalog file appeared: 0 bytes, or migrated but no manifest yet."""
    media, fresh_dir = fresh
    index_dir = tmp_path / "stillborn"
    index_dir.mkdir()
    if stillborn == "empty-file":
        (index_dir / "catalog.sqlite").touch()
    else:
        from mmsearch.index.catalog import Catalog

        Catalog.open(index_dir / "catalog.sqlite", create=True).close()
    code, out, err = run("check", "--index", str(index_dir))
    assert code == 2 and len([x for x in err.splitlines() if x.startswith("problem:")]) == 1
    # `mmsearch index PATH` without --model: the default model is chosen (its weights are not on this machine,
    # so it stops there), never the "catalog is empty, run `mmsearch index PATH`" loop.
    code, out, err = run("index", str(media), "--index", str(index_dir), "--no-asr")
    assert "stopped before committing" not in err
    if stillborn == "schema-only":
        Catalog.open(index_dir / "catalog.sqlite", create=True).close()
        code, out, err = run("check", "--repair", "--index", str(index_dir))
        assert "removed the catalog of a first run" in out
    monkeypatch.setenv("MMSEARCH_MODEL", "test:hash")  # the model chosen without --model
    code, out, err = run("index", str(media), "--index", str(index_dir), "--no-asr")
    assert code == 0, err
    assert index_state(index_dir).files == index_state(fresh_dir).files
