"""Names from disk are data, not terminal input; and the small edges of the issue: `--image` on a FIFO,
`MMSEARCH_INDEX='~nouser/x'`, `--top-k abc`, decoder noise on stderr, overlapping index paths."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.cli.ui import printable

REPO = Path(__file__).resolve().parents[1]
ANSI_NAME = "\x1b[31mred\x1b[0m.png"
FORGING_NAME = "bad\nfailed: forged.png: not a readable image.png"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", **(env or {})}
    cmd = [sys.executable, "-m", "mmsearch", *args]
    return subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout)


def image(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path, "PNG")
    return path


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("a\x1b[31mb\nc\u202ed\té") == "a\\x1b[31mb\\nc\\u202ed\\té"
    assert printable("plain name (1).png") == "plain name (1).png"


@pytest.mark.slow
def test_hostile_names_are_escaped_in_tables_and_failed_lines_but_exact_in_json(tmp_path: Path) -> None:
    media = tmp_path / "media"
    image(media / ANSI_NAME, 1)
    (media / FORGING_NAME).write_bytes(b"not an image at all")
    index = ["--index", str(tmp_path / "idx")]
    proc = cli("index", str(media), *index, "--model", "test:hash", "--no-asr")
    assert proc.returncode == 1  # one file failed
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "bad\\nfailed: forged.png" in failed[0]  # one failure, one line: nothing forged
    assert "\x1b" not in proc.stdout + proc.stderr

    table = cli("query", "red", *index)
    assert table.returncode == 0 and "\\x1b[31mred\\x1b[0m.png" in table.stdout and "\x1b" not in table.stdout
    exact = json.loads(cli("query", "red", *index, "--json").stdout)
    assert exact["results"][0]["path"] == str(media / ANSI_NAME)  # JSON stays exact

    (media / ANSI_NAME).unlink()
    check = cli("check", *index)
    assert "stale: " in check.stdout and "\\x1b[31m" in check.stdout and "\x1b" not in check.stdout


@pytest.mark.slow
def test_image_query_on_a_fifo_is_refused_not_waited_for(tmp_path: Path) -> None:
    image(tmp_path / "media" / "a.png", 1)
    index = ["--index", str(tmp_path / "idx")]
    assert cli("index", str(tmp_path / "media"), *index, "--model", "test:hash", "--no-asr").returncode == 0
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    proc = cli("query", "--image", str(fifo), *index, timeout=60)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and "not a regular file" in errors[0]


def test_index_env_with_an_unknown_user_home_is_one_line() -> None:
    proc = cli("info", env={"MMSEARCH_INDEX": "~nouser-mmsearch/x"})
    assert proc.returncode == 2 and proc.stderr.startswith("error: index directory ~nouser-mmsearch/x")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["query", "red", "--top-k", "abc"], ["query", "--bogus"], ["index"]])
def test_usage_errors_are_one_line_not_a_box(args: list[str]) -> None:
    proc = cli(*args)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and lines[0].startswith("error: ") and len(lines) == 2, proc.stderr
    assert lines[1].startswith("hint: see `") and "╭" not in proc.stderr


@pytest.mark.slow
def test_decoder_noise_stays_off_stderr(tmp_path: Path) -> None:
    """A video whose packets are damaged but whose header probes: ffmpeg (through OpenCV's shot detection) would
    print a raw `[h264 @ 0x…]` line per bad packet."""
    media = tmp_path / "media"
    media.mkdir()
    good = tmp_path / "good.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "4", str(good)],
        check=True,
    )
    data = bytearray(good.read_bytes())
    rng = random.Random(1)
    for _ in range(3000):
        data[rng.randrange(3000, len(data) - 8000)] = rng.randrange(256)
    (media / "garbled.mp4").write_bytes(bytes(data))
    proc = cli("index", str(media), "--index", str(tmp_path / "idx"), "--model", "test:hash", "--no-asr")
    assert "@ 0x" not in proc.stderr, proc.stderr[:500]
    assert proc.returncode in (0, 1)


def test_overlapping_paths_index_each_file_once(tmp_path: Path) -> None:
    media = tmp_path / "media"
    image(media / "a.png", 1)
    image(media / "sub" / "b.png", 2)
    os.chdir(tmp_path)
    args = ["media", "media/sub", "./media", "media/a.png", "media/a.png"]
    proc = cli("index", *args, "--index", str(tmp_path / "idx"), "--model", "test:hash", "--no-asr", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["new_files"] == 2 and summary["files"] == 2 and summary["segments"] == 2
