"""Issue 23 at the command line: `mmsearch serve`'s address, port and token rules as a user meets them (real
processes on real ports), the query bounds shared with the API, and names from disk printed by `show`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_index import SmallIndex, make_small_index
from typer.testing import CliRunner

from mmsearch.cli.app import app as cli
from mmsearch.errors import UsageError
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.search.fusion import parse_weights
from mmsearch.search.limits import MAX_TOP_K, MAX_WEIGHT, check_query_limits
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.server.discovery import SERVER_FILE
from mmsearch.testing.media import make_image
from mmsearch.testing.server import free_port, serving

runner = CliRunner()
TOKEN = "0123456789abcdef"  # 16 characters


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SmallIndex:
    return make_small_index(tmp_path_factory.mktemp("serve-cli-edges"))


def mmsearch(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mmsearch", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


# -- 10. bind first, then announce -------------------------------------------------------------------------


def test_a_busy_port_is_one_line_exit_2_and_the_running_server_stays_announced(small: SmallIndex) -> None:
    port = free_port()
    with serving(create_app(ServerConfig(small.index, announce_url=f"http://127.0.0.1:{port}")), port) as url:
        announced = (small.index / SERVER_FILE).read_text()
        second = mmsearch("serve", "--index", str(small.index), "--port", str(port))
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2, (out, err)
        assert "serving" not in out
        lines = err.strip().splitlines()
        assert lines[0].startswith("error:") and "already in use" in lines[0] and len(lines) <= 2, err
        assert "Traceback" not in err
        assert (small.index / SERVER_FILE).read_text() == announced  # the running server is still the one named
        assert httpx.get(url + "/api/info").status_code == 200


def test_serve_on_ipv6_loopback_answers_and_withdraws_its_file(small: SmallIndex) -> None:
    port = free_port()
    server = mmsearch("serve", "--index", str(small.index), "--host", "::1", "--port", str(port))
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("serving") and f"http://[::1]:{port}/" in line, line
        response = httpx.get(f"http://[::1]:{port}/api/search", params={"q": "red", "fusion": "rrf"}, timeout=60)
        assert response.status_code == 200 and response.json()["results"]
        assert json.loads((small.index / SERVER_FILE).read_text())["url"] == f"http://[::1]:{port}"
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert not (small.index / SERVER_FILE).exists()


def test_the_serving_line_comes_after_the_models_are_loaded(small: SmallIndex) -> None:
    """Item 11: the first query is not the one that loads models or measures calibration backgrounds."""
    loaded: list[bool] = []

    def ready() -> None:
        calibration = list(small.index.glob("calibration-*.json"))
        loaded.append(
            bool(calibration) and {"text", "image", "like"} <= set(json.loads(calibration[0].read_text())["scores"])
        )

    for old in small.index.glob("calibration-*.json"):
        old.unlink()
    with serving(create_app(ServerConfig(small.index, ready=ready))):
        assert loaded == [True]


# -- 6. tokens ------------------------------------------------------------------------------------------------


def test_a_public_bind_needs_a_token_of_16_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMSEARCH_TOKEN", raising=False)
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--token", "short"])
    assert result.exit_code == 2 and "at least 16" in result.stderr, result.stderr


def test_a_token_on_the_command_line_warns_that_ps_shows_it(small: SmallIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMSEARCH_TOKEN", raising=False)
    port = free_port()
    with serving(create_app(ServerConfig(small.index)), port):  # the port is busy: serve stops after its checks
        result = runner.invoke(cli, ["serve", "--index", str(small.index), "--token", TOKEN, "--port", str(port)])
        assert result.exit_code == 2 and "visible to every user" in result.stderr and "MMSEARCH_TOKEN" in result.stderr
        monkeypatch.setenv("MMSEARCH_TOKEN", TOKEN)
        result = runner.invoke(cli, ["serve", "--index", str(small.index), "--port", str(port)])
        assert result.exit_code == 2 and "visible" not in result.stderr


# -- 5. the same bounds in the CLI ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["red", *["--then", "blue"] * 9], "at most 8"),
        (["r" * 1001], "1001 characters"),
        (["red", "--top-k", "1001"], "--top-k"),
        (["red", "--weight", "visual=1e308"], "from 0 to 100"),
        (["red", "--weight", "visual=nan"], "from 0 to 100"),
        (["red", "--then", "blue", "--within", "inf"], "--within"),
        (["--like", "x" * 300 + "@0-1e300"], "--like range"),  # a name too long for the file system: no OSError
    ],
)
def test_query_over_the_bounds_is_exit_2(small: SmallIndex, args: list[str], needle: str) -> None:
    result = runner.invoke(cli, ["query", *args, "--index", str(small.index)])
    assert result.exit_code == 2 and needle in result.stderr, result.stderr


def test_query_json_scores_are_finite_at_the_highest_weights(small: SmallIndex) -> None:
    args = ["query", "red", "--index", str(small.index), "--json", "--fusion", "weighted", "--weight", "visual=100"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON number {c}"))
    assert body["results"] and all(math.isfinite(r["score"]) for r in body["results"])


WEIGHT_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789.e+-naif", max_size=12),
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
)


@settings(max_examples=300, deadline=None)
@given(channel=st.sampled_from(["visual", "keyword", "speech", "bogus", ""]), value=WEIGHT_TEXT)
def test_weight_parsing_accepts_only_finite_weights_up_to_100(channel: str, value: str) -> None:
    try:
        parsed = parse_weights([f"{channel}={value}"])
    except UsageError:
        return
    [(name, weight)] = parsed
    assert name == channel and math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(max_size=1100),
    then=st.lists(st.text(max_size=20), max_size=12),
    top_k=st.integers(min_value=-5, max_value=5000),
    within=st.floats(allow_nan=True, allow_infinity=True),
)
def test_query_limits_raise_only_usage_errors(text: str, then: list[str], top_k: int, within: float) -> None:
    try:
        check_query_limits(text, then, top_k, (), within)
    except UsageError:
        return
    assert len(then) <= 8 and len(text) <= 1000 and 1 <= top_k <= MAX_TOP_K and 0 < within <= 86_400


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    top_k=st.one_of(st.integers(min_value=-3, max_value=2000).map(str), st.sampled_from(["x", "1e9", "", "9" * 30])),
    weight=WEIGHT_TEXT,
    within=st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.sampled_from(["x", "-1", "1e9"])),
)
def test_query_options_end_in_results_or_one_error_line(
    small: SmallIndex, top_k: str, weight: str, within: str
) -> None:
    """Whatever the option values, `mmsearch query` answers or prints `error:` (+ `hint:`) and exits 2."""
    args = ["query", "red", "--index", str(small.index), "--json", "--fusion", "rrf", "--then", "blue"]
    result = runner.invoke(cli, [*args, "--top-k", top_k, "--weight", f"visual={weight}", "--within", within])
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr, repr(result.exception))
    if result.exit_code == 0:
        json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-JSON number {c}"))
    else:
        # Values click rejects itself (`--top-k x`) get its usage message here; the console entry point
        # (mmsearch.cli.app.main) turns that into one line, as tests/test_cli.py checks.
        lines = result.stderr.strip().splitlines()
        assert lines and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith("Usage:") or (lines[0].startswith("error:") and len(lines) <= 2), result.stderr


# -- 13. show escapes names from disk -----------------------------------------------------------------------------


def test_show_prints_control_characters_escaped(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    name = "evil\x1b]0;owned\x07\x1b[31mred\nforged line.png"
    still = make_image(media / "plain.png", "red").rename(media / name)
    index = tmp_path / "index"
    assert run_ingest(IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=None)).files == 1
    result = runner.invoke(cli, ["show", str(still), "--index", str(index)])
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b" in result.stdout and "\\n" in result.stdout
    path_lines = [line for line in result.stdout.splitlines() if line.startswith("path")]
    assert len(path_lines) == 1 and "forged line.png" in path_lines[0]
    assert json.loads(runner.invoke(cli, ["show", str(still), "--index", str(index), "--json"]).stdout)["path"] == str(
        still
    )
