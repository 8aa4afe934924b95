"""Bad input, one case each: the bad file gets one line with its path and reason, the rest is indexed, exit 1.
Bad queries and damaged indexes: exit 2 with a one-line message, never a traceback."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from index_state import TINY, index_state
from PIL import Image
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.ingest import discover, plan
from mmsearch.testing.media import Shot, make_audio, make_video

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def good_image(folder: Path, name: str = "good.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(name)).integers(0, 255, (TINY[1], TINY[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / name)
    return folder / name


def index_json(folder: Path, index: Path, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run("index", str(folder), "--index", str(index), "--model", "test:hash", "--json", *extra)
    assert "Traceback" not in out + err
    return code, json.loads(out), err


def six_second_video(path: Path) -> Path:
    shots = [Shot("red", 2), Shot("testsrc", 2), Shot("blue", 2)]
    return make_video(path, shots, size=TINY, fps=10, audio=False).path


def _zero_bytes(p: Path) -> None:
    p.write_bytes(b"")


def _random_bytes(p: Path) -> None:
    p.write_bytes(random.Random(0).randbytes(4096))


def _text(p: Path) -> None:
    p.write_text("this is a text file, not a picture\n")


def _huge_png(p: Path) -> None:
    Image.new("1", (20000, 20000)).save(p)  # 1 bit per pixel: 50 MB to make, 1.2 GB if decoded as RGB


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("zero.mp4", _zero_bytes, "empty file (0 bytes)"),
        ("random.mp4", _random_bytes, "not a readable media file"),
        ("text.jpg", _text, "not a readable image"),
        ("huge.png", _huge_png, "image too large to decode safely"),
    ],
)
def test_bad_file_is_reported_and_the_rest_indexed(
    tmp_path: Path, name: str, make: Callable[[Path], None], reason: str
) -> None:
    folder = tmp_path / "media"
    good_image(folder)
    make(folder / name)
    code, summary, err = index_json(folder, tmp_path / "idx", "--no-asr")
    assert code == 1
    assert summary["failed"] == [{"path": str(folder / name), "reason": summary["failed"][0]["reason"]}]
    assert reason in summary["failed"][0]["reason"]
    assert summary["files"] == 1 and summary["embedded"] == 1
    # Human output: one line per failure, path and reason.
    code, _, err = run("index", str(folder), "--index", str(tmp_path / "idx"), "--model", "test:hash", "--no-asr")
    lines = [line for line in err.splitlines() if name in line]
    assert code == 1 and len(lines) == 1 and reason in lines[0]


def test_truncated_mp4_is_reported_or_partly_indexed(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    good_image(folder)
    full = six_second_video(tmp_path / "full.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(full[: len(full) // 2])
    code, summary, _ = index_json(folder, tmp_path / "idx", "--no-asr")
    files = index_state(tmp_path / "idx").files
    cut = os.fsencode(folder / "cut.mp4")
    if summary["failed"]:  # the usual case: the second half of the stream is gone and the demuxer gives up
        assert code == 1 and summary["failed"][0]["path"] == str(folder / "cut.mp4")
        assert "truncated or corrupt" in summary["failed"][0]["reason"] and cut not in files
    else:
        assert code == 0 and 0 < files[cut][1] < 6
    assert files[os.fsencode(folder / "good.png")][3] == 1


def test_corrupt_frames_mid_stream_keep_what_decodes(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    data = bytearray(six_second_video(tmp_path / "full.mp4").read_bytes())
    rng = random.Random(0)
    for i in range(int(len(data) * 0.45), int(len(data) * 0.6)):  # inside the frame data, past the moov atom
        data[i] = rng.randrange(256)
    folder.mkdir()
    (folder / "corrupt.mp4").write_bytes(bytes(data))
    code, summary, err = index_json(folder, tmp_path / "idx", "--no-asr")
    frames = index_state(tmp_path / "idx").files[os.fsencode(folder / "corrupt.mp4")][1]
    assert code == 0 and summary["failed"] == []
    # The frames before the damage and any after it that decode are kept (PyAV's decoder conceals the damaged
    # packets, so every sample time can still get a frame; decord dropped some).
    assert 0 < frames <= 6
    assert "NAL unit" not in err  # ffmpeg's per-packet complaints stay out of the user's terminal


def test_video_without_audio_track_is_frames_only_not_an_error(tmp_path: Path, asr_model_dir: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    six_second_video(folder / "silent.mp4")
    # --no-dedupe: every sampled second is a frame segment, whatever the shots look like
    code, summary, _ = index_json(folder, tmp_path / "idx", "--asr-model", str(asr_model_dir), "--no-dedupe")
    assert code == 0 and summary["failed"] == []
    assert index_state(tmp_path / "idx").files[os.fsencode(folder / "silent.mp4")][1:] == (6, 0, 0)


def test_audio_only_file_without_asr_is_indexed_without_segments(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    good_image(folder)
    make_audio(folder / "tone.wav", [], duration=1.0)
    code, summary, _ = index_json(folder, tmp_path / "idx", "--no-asr")
    assert code == 0 and summary["files"] == 2 and summary["failed"] == []
    assert index_state(tmp_path / "idx").files[os.fsencode(folder / "tone.wav")][1:] == (0, 0, 0)


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "media"
    good_image(folder)
    locked = good_image(folder, "locked.png")
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the permission check answer as it would for a user
        real_access = os.access
        monkeypatch.setattr(discover.os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    code, summary, _ = index_json(folder, tmp_path / "idx", "--no-asr")
    assert code == 1 and summary["files"] == 1
    assert summary["failed"] == [{"path": str(locked), "reason": "permission denied"}]


def test_file_unreadable_by_the_time_it_is_hashed_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "media"
    good_image(folder)
    later = good_image(folder, "later.png")
    real_hash = plan.sha256_file

    def hash_or_deny(path: Path) -> str:
        if path == later:
            raise PermissionError(13, "Permission denied", str(path))
        return real_hash(path)

    monkeypatch.setattr(plan, "sha256_file", hash_or_deny)
    code, summary, _ = index_json(folder, tmp_path / "idx", "--no-asr")
    assert code == 1 and summary["files"] == 1
    assert summary["failed"] == [{"path": str(later), "reason": "Permission denied"}]


def test_broken_symlink_and_symlink_loops(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    good_image(folder / "sub")
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    (folder / "loop-a").symlink_to(folder / "loop-b")
    (folder / "loop-b").symlink_to(folder / "loop-a")
    (folder / "sub" / "up").symlink_to(folder)  # a directory loop
    code, summary, _ = index_json(folder, tmp_path / "idx", "--no-asr")
    failed = {Path(f["path"]).name: f["reason"] for f in summary["failed"]}
    assert code == 1 and summary["files"] == 1
    assert failed == {
        "dangling.png": "broken symlink",
        "loop-a": "symlink loop",
        "loop-b": "symlink loop",
        "up": "symlink loop (directory already visited)",
    }


def test_non_utf8_names_round_trip_and_are_reported_readably(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
    good_image(folder, name)
    (folder / os.fsdecode(b"bad\xff.mp4")).write_bytes(b"")
    index = tmp_path / "idx"
    code, summary, _ = index_json(folder, index, "--no-asr")
    assert code == 1 and summary["files"] == 1
    assert summary["failed"][0]["path"] == f"{folder}/bad\\xff.mp4"
    assert os.fsencode(folder) + b"/caf\xe9.png" in index_state(index).files
    code, again, _ = index_json(folder, index, "--no-asr")
    assert (again["embedded"], again["unchanged_files"]) == (0, 1)  # the exact bytes matched on rerun
    code, out, _ = run("query", "--image", str(folder / name), "--index", str(index), "--json")
    assert code == 0 and json.loads(out)["results"][0]["path"] == f"{folder}/caf\\xe9.png"
    code, out, _ = run("remove", str(folder / name), "--index", str(index), "--json")
    assert code == 0 and json.loads(out)["removed_files"] == 1


# -- queries and damaged indexes ----------------------------------------------------------------------


@pytest.fixture
def small_index(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    good_image(folder)
    index = tmp_path / "small"
    code, _, _ = index_json(folder, index, "--no-asr")
    assert code == 0
    return index


def _live_vectors(index: Path) -> Path:
    return max(index.glob("vectors-*.faiss"))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(3000))


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        (_truncate, "is damaged"),
        (_garbage, "is damaged"),
        (Path.unlink, "is missing"),
    ],
    ids=["truncated", "garbage", "missing"],
)
def test_damaged_vectors_file_exit_2_one_line(small_index: Path, damage: Callable[[Path], None], needle: str) -> None:
    damage(_live_vectors(small_index))
    for args in (["query", "red"], ["info"], ["index", str(small_index.parent / "media"), "--model", "test:hash"]):
        code, out, err = run(*args, "--index", str(small_index))
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert code == 2 and len(errors) == 1 and needle in errors[0], (args, err)
        assert "check --repair" in err and "Traceback" not in out + err


def test_catalog_of_an_interrupted_first_run_exit_2(tmp_path: Path) -> None:
    import sqlite3

    index = tmp_path / "idx"
    index.mkdir()
    sqlite3.connect(index / "catalog.sqlite").execute("PRAGMA journal_mode = WAL").close()  # created, no schema
    for args in (["query", "red"], ["info"], ["check"]):
        code, out, err = run(*args, "--index", str(index))
        assert code == 2 and "stopped before committing" in err and "Traceback" not in out + err


def test_directory_as_query_image_exit_2(small_index: Path, tmp_path: Path) -> None:
    code, out, err = run("query", "--image", str(tmp_path), "--index", str(small_index))
    assert code == 2 and "is a directory" in err and "Traceback" not in out + err


def test_copying_an_index_folder_keeps_it_usable(small_index: Path, tmp_path: Path) -> None:
    copy = tmp_path / "a copy #1?"
    shutil.copytree(small_index, copy)
    code, out, _ = run("info", "--index", str(copy), "--json")
    assert code == 0 and json.loads(out)["files"] == 1
