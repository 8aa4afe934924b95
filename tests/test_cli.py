"""CliRunner tests for every core command and its error paths (exit codes are a contract: see README)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from media import GoldenMedia
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.testing.media import extract_frame

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def index_copy(golden_index: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "idx"
    shutil.copytree(golden_index, copy)
    return copy


# -- index --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_index_json_summary_and_partial_failure_exit_1(
    golden: GoldenMedia, tmp_path: Path, asr_model_dir: Path
) -> None:
    media = tmp_path / "media"
    shutil.copytree(golden.root, media)
    (media / "broken.mp4").write_bytes(b"\x00\x01garbage" * 50)
    (media / "empty.wav").write_bytes(b"")
    (media / "notes.txt").write_text("not media, skipped quietly")
    index = tmp_path / "idx"
    code, out, err = run(
        "index", str(media), "--index", str(index), "--model", "test:hash", "--asr-model", str(asr_model_dir), "--json"
    )
    assert code == 1, err
    summary = json.loads(out)
    # 8 frames (12 sampled, deduped), 1 still, >= 2 speech segments
    assert summary["files"] == 4 and summary["embedded"] == summary["segments"] >= 11
    failed = {Path(f["path"]).name: f["reason"] for f in summary["failed"]}
    assert set(failed) == {"broken.mp4", "empty.wav"}
    assert "0 bytes" in failed["empty.wav"]
    assert "UNTRAINED" in err
    # Rerun: nothing embedded again, same failures, same exit code.
    code, out, _ = run("index", str(media), "--index", str(index), "--model", "test:hash", "--no-asr", "--json")
    again = json.loads(out)
    assert code == 1 and again["embedded"] == 0 and again["files"] == 4


def test_index_human_summary_and_exit_0(golden: GoldenMedia, tmp_path: Path) -> None:
    code, out, err = run(
        "index",
        str(golden.still),
        str(golden.shots),
        "--index",
        str(tmp_path / "i"),
        "--model",
        "test:hash",
        "--no-asr",
    )
    assert code == 0, err
    assert "2 new file(s)" in out and "5 segment(s) embedded" in out  # 6 frames deduped to 4, and the still


def test_index_default_location_from_env(golden: GoldenMedia, tmp_path: Path) -> None:
    code, _, err = run("index", str(golden.still), "--model", "test:hash", "--no-asr")
    assert code == 0, err
    assert (tmp_path / "index" / "catalog.sqlite").is_file()  # MMSEARCH_INDEX set by the autouse fixture


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "ViT-B-32"], "model spec"),
        (["--model", "test:hash", "--fps", "0"], "--fps"),
        (["--model", "test:hash", "--device", "tpu"], "--device"),
        (["--model", "test:hash", "--asr-backend", "nope"], "ASR backend"),
    ],
)
def test_index_usage_errors_exit_2(golden: GoldenMedia, tmp_path: Path, args: list[str], needle: str) -> None:
    code, out, err = run("index", str(golden.speech), "--index", str(tmp_path / "i"), *args)
    assert code == 2
    assert needle in err and "Traceback" not in err + out


def test_index_missing_path_is_a_usage_error_and_creates_nothing(tmp_path: Path) -> None:
    code, _, err = run("index", str(tmp_path / "nope"), "--index", str(tmp_path / "i"), "--model", "test:hash")
    assert code == 2  # issue 11: a typo in the media path must not create an index pinned to the model
    assert "no such file or directory" in err and not (tmp_path / "i").exists()


def test_index_unavailable_weights_exit_2_with_how_to(golden: GoldenMedia, tmp_path: Path) -> None:
    code, _, err = run("index", str(golden.still), "--index", str(tmp_path / "i"), "--no-asr")  # default model
    assert code == 2
    assert "cannot load weights" in err and "--model ViT-B-32:/path/to/" in err
    code, _, err = run(
        "index",
        str(golden.still),
        "--index",
        str(tmp_path / "i"),
        "--no-asr",
        "--model",
        f"ViT-B-32:{tmp_path}/missing.bin",
    )
    assert code == 2 and "does not exist" in err


def test_index_unavailable_asr_model_exit_2(golden: GoldenMedia, tmp_path: Path) -> None:
    code, _, err = run(
        "index", str(golden.speech), "--index", str(tmp_path / "i"), "--model", "test:hash", "--asr-model", "tiny.en"
    )
    assert code == 2
    assert "cannot load ASR model" in err and "--no-asr" in err


def test_index_other_model_is_refused(golden: GoldenMedia, tmp_path: Path) -> None:
    index = str(tmp_path / "i")
    assert run("index", str(golden.still), "--index", index, "--model", "test:hash", "--no-asr")[0] == 0
    code, _, err = run("index", str(golden.still), "--index", index, "--model", "random:mmsearch-tiny", "--no-asr")
    assert code == 2 and "built with model 'test:hash'" in err


# -- query --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_query_text_json_contract(index_copy: Path) -> None:
    code, out, err = run(
        "query",
        "red fox jumped over the wooden fence",
        "--index",
        str(index_copy),
        "--modality",
        "audio",
        "--json",
        "-k",
        "2",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["query"] == "red fox jumped over the wooden fence"
    top = data["results"][0]
    assert set(top) == {"path", "file_id", "kind", "start", "end", "score", "text", "evidence"}
    assert top["kind"] == "speech" and top["path"].endswith("talk.mp4") and "fox" in top["text"].lower()
    piece = top["evidence"][0]
    assert set(piece) == {"kind", "start", "end", "text", "channel", "score"} and piece["text"] == top["text"]
    assert isinstance(top["start"], float) and isinstance(top["end"], float)


@pytest.mark.slow
def test_query_image_table(index_copy: Path, golden: GoldenMedia, tmp_path: Path) -> None:
    frame = extract_frame(golden.shots, 3.0, tmp_path / "q.png")
    code, out, err = run("query", "--image", str(frame), "--index", str(index_copy), "-k", "3")
    assert code == 0, err
    first_row = next(line for line in out.splitlines() if "│ 1 " in line)
    assert "shots.mp4" in first_row and "frame" in first_row
    assert "00:02–00:04" in first_row  # reported as its shot: the testsrc shot between the cuts at 2 s and 4 s
    assert "UNTRAINED" in err


@pytest.mark.slow
def test_query_image_json_has_null_times_for_images(index_copy: Path, golden: GoldenMedia) -> None:
    code, out, _ = run(
        "query", "--image", str(golden.still), "--index", str(index_copy), "--modality", "image", "--json"
    )
    assert code == 0
    top = json.loads(out)["results"][0]
    assert top["kind"] == "image" and top["start"] is None and top["end"] is None and top["text"] is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["   "], "query text is empty"),
        ([], "give a query text or --image"),
        (["x", "--modality", "smell"], "--modality"),
        (["x", "--top-k", "0"], "--top-k"),
    ],
)
def test_query_usage_errors_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    code, _, err = run("query", *args, "--index", str(tmp_path / "i"))
    assert code == 2 and needle in err


def test_query_missing_index_exit_2(tmp_path: Path) -> None:
    code, _, err = run("query", "dog", "--index", str(tmp_path / "nowhere"))
    assert code == 2 and "no index at" in err and "mmsearch index PATH" in err


@pytest.mark.slow
def test_query_bad_images_exit_2(index_copy: Path, tmp_path: Path) -> None:
    text = tmp_path / "fake.jpg"
    text.write_text("not an image")
    for image, needle in (
        (tmp_path / "missing.png", "does not exist"),
        (tmp_path, "is a directory"),
        (text, "not a readable image"),
    ):
        code, out, err = run("query", "--image", str(image), "--index", str(index_copy))
        assert code == 2 and needle in err and "Traceback" not in out + err


@pytest.mark.slow
def test_query_model_mismatch_exit_2(index_copy: Path) -> None:
    code, _, err = run("query", "dog", "--index", str(index_copy), "--model", "ViT-B-32:openai")
    assert code == 2 and "built with model 'test:hash'" in err


def test_query_corrupt_index_exit_2(tmp_path: Path) -> None:
    index = tmp_path / "i"
    index.mkdir()
    (index / "catalog.sqlite").write_bytes(b"garbage" * 200)
    code, out, err = run("query", "dog", "--index", str(index))
    assert code == 2 and "unreadable" in err and "Traceback" not in out + err


# -- info / models ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_info_json_contract(index_copy: Path) -> None:
    code, out, _ = run("info", "--index", str(index_copy), "--json")
    assert code == 0
    info = json.loads(out)
    assert info["files"] == 4 and info["model"] == "test:hash"
    # 12 frames sampled, 8 embedded after dedupe
    assert (
        set(info["segments"]) == {"frame", "speech", "image", "ocr", "audio", "subtitle", "face"}
        and info["segments"]["frame"] == 8
    )
    assert info["faces"] == {"tracks": 0, "people": 0}
    code, out, _ = run("info", "--index", str(index_copy))
    assert code == 0 and "test:hash" in out


def test_info_missing_index_exit_2(tmp_path: Path) -> None:
    code, _, err = run("info", "--index", str(tmp_path / "none"))
    assert code == 2 and "no index at" in err


def test_models_lists_default_and_json() -> None:
    code, out, _ = run("models")
    assert code == 0 and "ViT-B-32:laion2b_s34b_b79k" in out
    code, out, _ = run("models", "--json")
    assert code == 0 and {"spec": "test:hash", "dim": 64}.items() <= json.loads(out)[-1].items()


def test_version_and_help() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("mmsearch ")
    code, out, _ = run("--help")
    assert code == 0 and "index" in out and "query" in out


def test_failed_first_run_leaves_no_half_made_index(golden: GoldenMedia, tmp_path: Path) -> None:
    index = tmp_path / "fresh"
    code, _, _ = run("index", str(golden.still), "--index", str(index), "--no-asr")  # no weights offline
    assert code == 2 and not index.exists()
    code, _, err = run("info", "--index", str(index))
    assert code == 2 and "no index at" in err


def test_refused_writer_releases_its_lock(golden: GoldenMedia, tmp_path: Path) -> None:
    index = str(tmp_path / "i")
    assert run("index", str(golden.still), "--index", index, "--model", "test:hash", "--no-asr")[0] == 0
    assert run("index", str(golden.still), "--index", index, "--model", "random:mmsearch-tiny", "--no-asr")[0] == 2
    code, _, err = run("index", str(golden.shots), "--index", index, "--model", "test:hash", "--no-asr")
    assert code == 0, err  # the same process can write again: the refused run did not keep the lock


def test_index_without_model_reuses_the_index_model(golden: GoldenMedia, tmp_path: Path) -> None:
    index = str(tmp_path / "i")
    assert run("index", str(golden.still), "--index", index, "--model", "test:hash", "--no-asr")[0] == 0
    code, out, err = run("index", str(golden.shots), "--index", index, "--no-asr", "--json")
    assert code == 0, err
    assert json.loads(out)["files"] == 2 and "UNTRAINED" in err  # the index's test model, warned about


@pytest.mark.slow
def test_no_asr_then_asr_adds_speech_once(golden: GoldenMedia, tmp_path: Path, asr_model_dir: Path) -> None:
    index = str(tmp_path / "i")
    base = ("index", str(golden.talk), "--index", index, "--model", "test:hash", "--json")
    first = json.loads(run(*base, "--no-asr")[1])
    assert first["embedded"] == first["segments"] == 4  # frames only: 6 sampled, static smptebars deduped
    upgraded = json.loads(run(*base, "--asr-model", str(asr_model_dir))[1])
    assert upgraded["files"] == 1 and upgraded["segments"] > 4 and upgraded["embedded"] == upgraded["segments"]
    again = json.loads(run(*base, "--asr-model", str(asr_model_dir))[1])
    assert again["embedded"] == 0 and again["segments"] == upgraded["segments"]
    without = json.loads(run(*base, "--no-asr")[1])
    assert without["embedded"] == 0 and without["segments"] == upgraded["segments"]  # speech is kept


def test_index_no_shots_skips_detection(golden: GoldenMedia, tmp_path: Path) -> None:
    from mmsearch.index.catalog import Catalog

    index = tmp_path / "i"
    code, out, err = run(
        "index", str(golden.shots), "--index", str(index), "--model", "test:hash", "--no-asr", "--no-shots", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["times"]["shots"] == 0.0
    catalog = Catalog.open(index / "catalog.sqlite", readonly=True)
    try:
        assert catalog.shots_of([f.id for f in catalog.files()]) == {}
    finally:
        catalog.close()
    code, out, _ = run("index", str(golden.talk), "--index", str(index), "--no-asr", "--json")
    catalog = Catalog.open(index / "catalog.sqlite", readonly=True)
    try:
        assert len(catalog.shots_of([f.id for f in catalog.files()])) == 1  # detection on by default
    finally:
        catalog.close()
