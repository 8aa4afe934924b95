"""`mmsearch query` starts a background `mmsearch serve` after answering in-process (issue 27), which then answers
the next queries and stops by itself once idle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mmsearch.cli import daemon
from mmsearch.cli.app import app
from mmsearch.search.searcher import Searcher
from mmsearch.server.discovery import read_announcement
from mmsearch.server.idle import IdleWatch


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_idle_watch_counts_from_the_last_request_and_never_during_one() -> None:
    clock = Clock()
    watch = IdleWatch(10.0, clock)
    clock.t += 9.9
    assert not watch.expired()
    clock.t += 0.1
    assert watch.expired()

    async def slow(request: Any) -> str:
        clock.t += 60.0  # a request longer than the limit: the server is busy, not idle
        assert not watch.expired()
        return "done"

    assert asyncio.run(watch.middleware(None, slow)) == "done"  # type: ignore[arg-type]
    assert watch.idle_for() == 0.0 and not watch.expired()
    clock.t += 10.0
    assert watch.expired()


def test_the_watcher_stops_the_server_once_idle() -> None:
    stopped: list[float] = []
    watch = IdleWatch(0.2)
    watch.start(stop=lambda: stopped.append(time.monotonic())).join(timeout=10)
    assert stopped


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Records the servers start_daemon would start, starting none."""
    calls: list[list[str]] = []

    class Popen:
        pid = 4242

        def __init__(self, command: list[str], **kwargs: Any) -> None:
            calls.append(command)

    monkeypatch.setattr(daemon.subprocess, "Popen", Popen)
    monkeypatch.delenv(daemon.NO_DAEMON_ENV)
    return calls


def _query(index: Path, *extra: str) -> None:
    result = CliRunner().invoke(app, ["query", "red fox", "--index", str(index), "--json", *extra])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["results"]  # the answer came first, in-process


def test_a_query_answered_in_process_starts_one_background_server(
    golden_index: Path, spawned: list[list[str]], tmp_path: Path
) -> None:
    index = tmp_path / "copy"
    _copy(golden_index, index)
    _query(index)
    assert len(spawned) == 1
    command = spawned[0]
    assert command[1:4] == ["-m", "mmsearch", "serve"] and command[command.index("--index") + 1] == str(index)
    assert command[command.index("--idle-exit") + 1] == str(daemon.DAEMON_IDLE_S)
    _query(index)  # another query while that one starts: no second server
    assert len(spawned) == 1


@pytest.mark.parametrize("opt_out", ["--no-daemon", "env", "--server"])
def test_no_background_server_when_opted_out_or_a_server_is_named(
    golden_index: Path, spawned: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opt_out: str
) -> None:
    index = tmp_path / "copy"
    _copy(golden_index, index)
    extra = {"--no-daemon": ["--no-daemon"], "env": [], "--server": ["--server", "http://127.0.0.1:9"]}[opt_out]
    if opt_out == "env":
        monkeypatch.setenv(daemon.NO_DAEMON_ENV, "1")
    _query(index, *extra)
    assert spawned == []


def test_no_background_server_for_a_read_only_index(golden_index: Path, spawned: list[list[str]]) -> None:
    golden_index.chmod(0o555)
    try:
        if os.access(golden_index, os.W_OK):
            pytest.skip("running as root: a read-only directory stays writable")
        _query(golden_index)
    finally:
        golden_index.chmod(0o755)
    assert spawned == []


@pytest.mark.slow
def test_the_background_server_answers_the_next_query_then_stops_when_idle(
    golden_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "copy"
    _copy(golden_index, index)
    monkeypatch.delenv(daemon.NO_DAEMON_ENV)
    monkeypatch.setattr(daemon, "DAEMON_IDLE_S", 20)
    _query(index)
    served = _wait(lambda: read_announcement(index), 240)
    try:
        assert httpx.get(served.url + "/api/info", timeout=30).status_code == 200

        def refuse(*args: Any, **kwargs: Any) -> Searcher:
            raise AssertionError("the query was answered in-process, not by the background server")

        monkeypatch.setattr(Searcher, "open", refuse)
        _query(index)
        _wait(lambda: read_announcement(index) is None or None, 120)  # idle 20 s: it stops and withdraws its file
        assert "no request for 20 s" in (index / daemon.DAEMON_LOG).read_text()
    finally:
        if read_announcement(index) is not None:
            os.kill(served.pid, signal.SIGTERM)


def _wait(probe: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while (found := probe()) is None:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
    return found


def _copy(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("server.json", "write.lock"))
