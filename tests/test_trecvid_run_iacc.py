"""`mmsearch run` with an IACC-style frame-numbered msb: the frame rate is probed from the indexed video."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app

runner = CliRunner()


@pytest.mark.slow
def test_run_reads_frame_numbers_at_the_indexed_videos_rate(tmp_path: Path, media_tools: None) -> None:
    media = tmp_path / "media"
    media.mkdir()
    # 4 s at 25 fps: red for 2 s (frames 0-49), then blue (frames 50-99).
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:size=64x64:rate=25:duration=2",
         "-f", "lavfi", "-i", "color=blue:size=64x64:rate=25:duration=2",
         "-filter_complex", "[0][1]concat=n=2:v=1", "-pix_fmt", "yuv420p", str(media / "39238.mp4")],
        check=True,
    )  # fmt: skip
    index = tmp_path / "index"
    indexed = runner.invoke(app, ["index", str(media), "--index", str(index), "--model", "test:hash", "--no-asr"])
    assert indexed.exit_code == 0, indexed.output
    msb = tmp_path / "39238.msb"
    msb.write_text("0 49\n50 99\n")
    topics = tmp_path / "topics.txt"
    topics.write_text("661 a blue screen\n")
    out = tmp_path / "run.txt"
    args = ["run", "--topics", str(topics), "--msb", str(msb), "--index", str(index), "--out", str(out)]
    result = runner.invoke(app, [*args, "--topic-offset", "1000"])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in out.read_text().splitlines()]
    # Two shots, both reached (4 frames at 1 fps fall two in each); at 25 fps frame 50 starts at 2.0 s.
    assert sorted(fields[2] for fields in lines) == ["shot39238_1", "shot39238_2"]
    assert {fields[0] for fields in lines} == {"1661"}
    # An explicit --fps wins over the probe: at 12.5 fps the first shot lasts 0-3.92 s and holds every frame.
    result = runner.invoke(app, [*args, "--fps", "12.5"])
    assert result.exit_code == 0, result.output
    assert [line.split()[2] for line in out.read_text().splitlines()] == ["shot39238_1"]
