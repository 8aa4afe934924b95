"""Isolation: a decode worker that crashes (SIGSEGV, SIGKILL) or hangs costs only its file; failed files are
remembered with their content hash; one decode pass per video feeds both shot detection and sampled frames."""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from mmsearch.cli import ingest as cli_ingest
from mmsearch.cli.app import app
from mmsearch.ingest import workers
from mmsearch.ingest.discover import probe
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.workers import Budget, DecodeSettings, DecodeTask, FileEvent, Frames, Idle, Shots
from mmsearch.testing.media import Shot, make_video

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "a.mp4", [Shot("red", 1), Shot("blue", 1)], audio=False, size=(64, 48))
    make_video(media / "b_long.mp4", [Shot("testsrc", 20)], audio=False, size=(64, 48), fps=10)
    make_video(media / "c.mp4", [Shot("green", 1), Shot("yellow", 1)], audio=False, size=(64, 48))
    return media


def _killer(sig: signal.Signals, target: str) -> Any:
    """Kill the decode worker with `sig` when its first frames of `target` arrive: mid-file."""
    done: list[bool] = []

    def on_event(event: FileEvent | Idle) -> None:
        if not done and isinstance(event, Frames) and event.media.path.name == target:
            for child in mp.active_children():
                if child.name == "mmsearch-decode" and child.pid is not None:
                    os.kill(child.pid, sig)
            done.append(True)
            time.sleep(0.5)

    return on_event


def _options(media: Path, index_dir: Path, **kw: Any) -> IngestOptions:
    return IngestOptions(
        paths=(media,), index_dir=index_dir, model="test:hash", asr=None, workers=1, shots="adaptive", **kw
    )


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL])
def test_crashed_decode_worker_costs_only_its_file(folder: Path, tmp_path: Path, sig: signal.Signals) -> None:
    index_dir = tmp_path / "i"
    summary = run_ingest(_options(folder, index_dir, batch_size=4), on_event=_killer(sig, "b_long.mp4"))
    assert [(Path(f.path).name, f.reason) for f in summary.failed] == [("b_long.mp4", f"decoder crashed ({sig.name})")]
    assert summary.new_files == 2
    result = runner.invoke(app, ["info", "--index", str(index_dir), "--json"])
    failed = json.loads(result.stdout)["failed"]
    assert [Path(f["path"]).name for f in failed] == ["b_long.mp4"] and failed[0]["reason"].startswith(
        "decoder crashed"
    )
    assert len(failed[0]["sha256"]) == 64

    # Not retried while unchanged; retried with --retry-failed (and indexed now that nothing kills it).
    again = run_ingest(_options(folder, index_dir))
    assert again.new_files == 0 and [Path(f.path).name for f in again.failed] == ["b_long.mp4"]
    assert "not retried" in again.failed[0].reason and "decoder crashed" in again.failed[0].reason
    retried = run_ingest(_options(folder, index_dir, retry_failed=True))
    assert retried.new_files == 1 and retried.failed == []
    result = runner.invoke(app, ["info", "--index", str(index_dir), "--json"])
    assert json.loads(result.stdout)["failed"] == [] and json.loads(result.stdout)["files"] == 3


def test_cli_reports_crash_in_one_line_and_exits_1(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        cli_ingest, "run_ingest", functools.partial(run_ingest, on_event=_killer(signal.SIGSEGV, "b_long.mp4"))
    )
    result = runner.invoke(app, ["index", str(folder), "--index", str(tmp_path / "i"), "--model", "test:hash",
                                 "--no-asr", "--shots", "adaptive", "--workers", "1", "--batch-size", "4"])  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if "b_long.mp4" in line]
    assert result.exit_code == 1
    assert len(lines) == 1 and "decoder crashed (SIGSEGV)" in lines[0]
    assert "2 new file(s)" in result.stdout


def test_hung_worker_times_out(folder: Path, tmp_path: Path) -> None:
    # SIGSTOP: the worker neither dies nor answers, like a decoder stuck in a loop.
    summary = run_ingest(
        _options(folder, tmp_path / "i", batch_size=4, budget=Budget(base=3.0, per_media_second=0.0)),
        on_event=_killer(signal.SIGSTOP, "b_long.mp4"),
    )
    assert [(Path(f.path).name, f.reason) for f in summary.failed] == [("b_long.mp4", "decoder timed out after 3 s")]
    assert summary.new_files == 2


def test_a_video_is_opened_for_decoding_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import av
    import scenedetect

    video = make_video(tmp_path / "v.mp4", [Shot("red", 1), Shot("blue", 1)], audio=False, size=(64, 48))
    opened: list[str] = []
    real_open = av.open

    def counting_open(path: Any, *args: Any, **kw: Any) -> Any:
        opened.append(str(path))
        return real_open(path, *args, **kw)

    def no_second_decoder(*args: Any, **kw: Any) -> Any:
        raise AssertionError("shot detection opened the video itself")

    monkeypatch.setattr(av, "open", counting_open)
    monkeypatch.setattr(scenedetect, "open_video", no_second_decoder)
    media = probe(video.path)
    opened.clear()  # probing reads the header; decoding starts here
    events = list(workers._decode(DecodeTask(media, DecodeSettings(1.0, 32, "adaptive", 60.0), audio=False)))
    assert opened == [str(video.path)]
    frames = np.concatenate([e.batch.times for e in events if isinstance(e, Frames)])
    shots = next(e.shots for e in events if isinstance(e, Shots))
    assert list(frames) == [0.0, 1.0]
    assert [(round(a, 2), round(b, 2)) for a, b in shots] == [(0.0, 1.0), (1.0, 2.0)]


SCRIPT_WITHOUT_MAIN_GUARD = """
from pathlib import Path
from mmsearch.ingest.runner import IngestOptions, run_ingest

run_ingest(IngestOptions(paths=(Path({media!r}),), index_dir=Path({index!r}), model="test:hash", asr=None, workers=1))
print("RUN ENDED")
"""


def test_a_script_without_main_guard_gets_one_clear_error(folder: Path, tmp_path: Path) -> None:
    """Spawned decode workers import the script and run its top level again: every worker dies while starting.
    That is the script's mistake, not the media's: the run stops at once and says what to change."""
    script = tmp_path / "index_my_media.py"
    script.write_text(SCRIPT_WITHOUT_MAIN_GUARD.format(media=str(folder), index=str(tmp_path / "idx")))
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert time.monotonic() - t0 < 120
    assert done.returncode == 1 and "RUN ENDED" not in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("mmsearch.errors.UsageError: a decode worker process exited while starting")
    assert 'call run_ingest under `if __name__ == "__main__":`' in last
