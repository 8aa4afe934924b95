"""`mmsearch export` and `mmsearch clip` through the CLI: real media, real ffmpeg, adapters reading back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from serve_index import make_small_index
from test_export import FRIDAY, JFK, REAL, SAME_FRAME_BITS, _dhash, _frame
from typer.testing import CliRunner

from mmsearch.cli.app import app

runner = CliRunner()
otio = pytest.importorskip("opentimelineio")


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def real() -> Path:
    if not FRIDAY.is_file():
        pytest.skip(f"real media not found at {REAL}")
    return REAL


def _results(tmp_path: Path) -> Path:
    saved = tmp_path / "results.json"
    results = [
        {"path": str(FRIDAY), "kind": "frame", "start": 1.0, "end": 2.0, "score": 0.9, "text": None},
        {"path": str(FRIDAY), "kind": "speech", "start": 3.0, "end": 4.5, "score": 0.7, "text": "it's friday"},
    ]
    saved.write_text(json.dumps({"query": "friday", "results": results}))
    return saved


def test_export_from_saved_results_in_each_format(real: Path, tmp_path: Path) -> None:
    saved = _results(tmp_path)
    for suffix in ("otio", "edl", "fcpxml", "xml", "mlt", "csv"):
        out = tmp_path / f"edit.{suffix}"
        code, stdout, stderr = run("export", "--from", str(saved), "--out", str(out), "--handles", "0.5")
        assert code == 0, stderr
        assert "wrote 2 moments" in stdout and out.stat().st_size > 0
    timeline = otio.adapters.read_from_file(str(tmp_path / "edit.otio"))
    first, second = timeline.find_clips()
    assert first.source_range.start_time.value == 15 and first.source_range.duration.value == 60  # 0.5-2.5 s
    assert second.markers[0].comment == "it's friday" and timeline.name == "friday"


def test_export_a_query_on_an_index(tmp_path: Path) -> None:
    small = make_small_index(tmp_path / "small")
    out = tmp_path / "red.edl"
    code, stdout, stderr = run(
        "export", "red", "--index", str(small.index), "-k", "3", "--fusion", "rrf", "--out", str(out)
    )
    assert code == 0, stderr
    timeline = otio.adapters.read_from_file(str(out), rate=25)
    paths = {otio.url_utils.filepath_from_url(c.media_reference.target_url) for c in timeline.find_clips()}
    assert paths <= {str(small.video), str(small.still)} and paths


def test_export_errors_are_one_line(real: Path, tmp_path: Path) -> None:
    saved = _results(tmp_path)
    code, _, stderr = run("export", "--from", str(saved), "--out", str(tmp_path / "edit.avid"))
    assert code == 2 and "cannot tell the format from 'edit.avid'" in stderr
    code, _, stderr = run("export", "--from", str(saved), "--out", str(tmp_path / "e.x"), "--format", "avid")
    assert code == 2 and "unknown export format 'avid'" in stderr
    code, _, stderr = run("export", "red", "--from", str(saved), "--out", str(tmp_path / "e.csv"))
    assert code == 2 and "one of them" in stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    code, _, stderr = run("export", "--from", str(broken), "--out", str(tmp_path / "e.csv"))
    assert code == 2 and "cannot read moments" in stderr
    empty = tmp_path / "empty.json"
    empty.write_text('{"query": "x", "results": []}')
    code, _, stderr = run("export", "--from", str(empty), "--out", str(tmp_path / "e.csv"))
    assert code == 2 and "no moments to export" in stderr


def _duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout)


def test_clip_copies_from_a_keyframe_or_cuts_exactly(real: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run("clip", f"{FRIDAY}@1.5-3", f"{JFK}@2-4", "--out", str(tmp_path / "copy"))
    assert code == 0, stderr
    copied = tmp_path / "copy" / "friday_1.50-3.00.mp4"
    assert stdout.split() == [str(copied), str(tmp_path / "copy" / "jfk_2.00-4.00.flac")]
    assert 1.5 - 0.05 <= _duration(copied) <= 1.5 + 10.0  # starts at the keyframe at or before 1.5 s

    code, stdout, stderr = run("clip", f"{FRIDAY}@1.5-3", "--exact", "--out", str(tmp_path / "exact"))
    assert code == 0, stderr
    exact = tmp_path / "exact" / "friday_1.50-3.00.mp4"
    assert abs(_duration(exact) - 1.5) <= 0.1
    distance = int((_dhash(_frame(exact, 0.01)) != _dhash(_frame(FRIDAY, 1.51))).sum())
    assert distance <= SAME_FRAME_BITS


def test_clip_keeps_going_past_a_bad_moment(real: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run("clip", f"{tmp_path}/gone.mp4@1-2", f"{FRIDAY}@1-2", "--out", str(tmp_path / "c"))
    assert code == 1 and "gone.mp4 does not exist" in stderr
    assert stdout.strip().endswith("friday_1.00-2.00.mp4")
    code, _, stderr = run("clip", f"{FRIDAY}@3-1", "--out", str(tmp_path / "c"))
    assert code == 2 and "END must be greater than START" in stderr
    code, _, stderr = run("clip", str(FRIDAY), "--out", str(tmp_path / "c"))
    assert code == 2 and "is not PATH@START-END" in stderr
    code, _, stderr = run("clip", f"{FRIDAY}@100-200", "--out", str(tmp_path / "c"))
    assert code == 2 and "has nothing between 100 s and 200 s" in stderr
