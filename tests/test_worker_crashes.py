"""A crashing decode worker costs at most its file, also when several crash at once (issue 25): both decode workers
killed with SIGSEGV while six videos are being indexed; replacements take over, every other file is indexed, each
lost file gets its `failed:` line and the summary is printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmsearch.testing.media import Shot, make_video

VIDEOS = 6


def _decode_workers(parent: int) -> list[int]:
    """The parent's children other than multiprocessing's resource tracker."""
    rows = subprocess.run(["ps", "--ppid", str(parent), "-o", "pid=,args="], capture_output=True, text=True).stdout
    return [int(r.split(None, 1)[0]) for r in rows.splitlines() if r.strip() and "resource_tracker" not in r]


def _index_and_kill(tmp_path: Path, delay: float) -> tuple[subprocess.CompletedProcess[str], int]:
    media = tmp_path / "media"
    media.mkdir()
    for n in range(VIDEOS):
        make_video(media / f"v{n}.mp4", [Shot("red", 10), Shot("blue", 10)], [], size=(160, 120))
    cmd = [sys.executable, "-m", "mmsearch", "index", str(media), "--index", str(tmp_path / "idx")]
    cmd += ["--model", "test:hash", "--no-asr", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while len(_decode_workers(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    killed = 0
    for pid in _decode_workers(proc.pid):
        os.kill(pid, signal.SIGSEGV)
        killed += 1
    out, _ = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, ""), killed


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="finds the workers with ps --ppid")
def test_both_decode_workers_killed_mid_run_cost_only_their_files(tmp_path: Path) -> None:
    done, killed = _index_and_kill(tmp_path, delay=1.5)
    assert killed == 2
    assert done.returncode == 1, done.stdout  # some inputs failed, the rest was indexed
    failed = [line for line in done.stdout.splitlines() if line.startswith("failed:")]
    assert len(failed) <= 2 and all("crashed (SIGSEGV)" in line for line in failed), done.stdout
    assert f"indexed {VIDEOS - len(failed)} new file(s)" in done.stdout  # replacements decoded all the others
    assert f"{len(failed)} file(s) failed" in done.stdout  # the summary is printed
