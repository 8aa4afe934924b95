"""`mmsearch serve` and `mmsearch query` through a running server (uvicorn on a real socket)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_index import SmallIndex, make_small_index
from typer.testing import CliRunner

from mmsearch.cli.app import app as cli
from mmsearch.cli.serve import is_loopback
from mmsearch.search.searcher import Searcher
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.server.discovery import SERVER_FILE
from mmsearch.testing.server import free_port, serving

runner = CliRunner()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SmallIndex:
    return make_small_index(tmp_path_factory.mktemp("serve-cli"))


@pytest.fixture
def server(small: SmallIndex) -> Iterator[str]:
    port = free_port()
    app = create_app(ServerConfig(small.index, announce_url=f"http://127.0.0.1:{port}"))
    with serving(app, port) as url:
        yield url


def query(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["query", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_serve_refuses_a_public_address_without_a_token(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMSEARCH_TOKEN", raising=False)
    result = runner.invoke(cli, ["serve", "--host", host])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "token" in result.stderr, result.stderr


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "::", "my-host"))


def test_server_file_is_written_while_serving_and_removed_after(small: SmallIndex) -> None:
    port = free_port()
    with serving(create_app(ServerConfig(small.index, announce_url=f"http://127.0.0.1:{port}"))):
        announced = json.loads((small.index / SERVER_FILE).read_text())
        assert announced["url"] == f"http://127.0.0.1:{port}"
        assert Path(announced["index"]) == small.index.resolve()
        check = runner.invoke(cli, ["check", "--index", str(small.index)])  # the server's files are not strays
        assert check.exit_code == 0, check.stdout + check.stderr
    assert not (small.index / SERVER_FILE).exists()


@pytest.mark.parametrize(
    "args",
    [
        ("red", "--json"),  # the default fusion (calibrated)
        ("red", "--json", "--fusion", "rrf"),
        ("red", "--json", "--explain", "-k", "2", "--modality", "video", "--fusion", "rrf"),
        ("red", "--explain", "--fusion", "rrf"),  # the rich table too
        ("red", "--fusion", "weighted", "--weight", "visual=2", "--json"),
        ("red", "--kind", "frame", "--then", "blue", "--within", "5", "--explain", "--json", "--fusion", "rrf"),
        ("red", "--fusion", "rrf", "--explain", "--json"),
    ],
)
def test_query_through_the_server_prints_what_in_process_prints(
    small: SmallIndex, server: str, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    # --server at a closed port: no answer, so the query loads the index in-process.
    local = query(*args, "--index", str(small.index), "--server", f"http://127.0.0.1:{free_port()}")
    # From here on, loading the index in this process is an error: only the server can answer.
    monkeypatch.setattr(Searcher, "open", _no_in_process)
    served = query(*args, "--index", str(small.index))
    assert served == local and served[0] == 0
    monkeypatch.delenv("MMSEARCH_INDEX")  # no index named: --server speaks for its own
    assert query(*args, "--server", server) == local


def test_image_query_through_the_server(small: SmallIndex, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--image", str(small.still), "--index", str(small.index), "--json", "--fusion", "rrf")
    local = query(*args, "--server", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(Searcher, "open", _no_in_process)
    assert query(*args) == local
    assert json.loads(local[1])["query"] == f"image:{small.still}"


def test_errors_are_reported_in_process_with_the_same_exit_code(small: SmallIndex, server: str) -> None:
    code, _, err = query("--image", str(small.index), "--index", str(small.index))
    assert code == 2 and "is a directory" in err
    code, _, err = query("x", "--channel", "telepathy", "--index", str(small.index))
    assert code == 2 and "unknown channel" in err


def test_a_server_of_another_index_is_not_used(small: SmallIndex, server: str, tmp_path: Path) -> None:
    other = tmp_path / "other"
    code, _, err = query("red", "--index", str(other), "--server", server)
    assert code == 2 and "no index at" in err


def test_stale_server_file_is_ignored(small: SmallIndex, tmp_path: Path) -> None:
    index = tmp_path / "index"
    import shutil

    shutil.copytree(small.index, index)
    (index / SERVER_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 2**22 + 12345, "index": "x"}))
    code, out, _ = query("red", "--index", str(index), "--json", "-k", "1", "--fusion", "rrf")
    assert code == 0 and len(json.loads(out)["results"]) == 1


@pytest.mark.parametrize(
    "target",
    ["/media/../catalog.sqlite", "/media/../../../etc/passwd", "/thumbnail/../catalog.sqlite", "/media/%2e%2e/x"],
)
def test_raw_traversal_on_the_wire_is_404_json(server: str, target: str) -> None:
    """httpx normalises dot segments, so these go out as raw bytes, as a hostile client would send them."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404"), head
    assert set(json.loads(body)) == {"error", "hint"}


def _no_in_process(*args: object, **kwargs: object) -> Searcher:
    raise AssertionError("the query was answered in-process, not by the server")


@pytest.mark.parametrize("explain", [False, True])
def test_moment_json_round_trips_through_a_server_answer(explain: bool) -> None:
    """What the CLI prints from a server's answer is what it prints in-process: channels, evidence, parts."""
    from mmsearch.search.results import moment_from_json, moment_json
    from mmsearch.types import ChannelScore, Moment, SegmentKind

    seen = {"visual": ChannelScore(1, 0.3, 2.71828)}
    part = Moment("/m/a.mp4", SegmentKind.FRAME, 1.0, 2.5, 0.25, None, channels=seen, file_id=7)
    said = Moment(
        "/m/a.mp4", SegmentKind.SPEECH, 3.0, 4.0, 0.125, "a fox", channels={"keyword": ChannelScore(2, 7.5)}, file_id=7
    )
    chain = Moment(
        "/m/a.mp4", SegmentKind.FRAME, 1.0, 4.0, 0.1 + 0.2, None, channels=part.channels, parts=(part, said), file_id=7
    )
    for moment in (part, said, chain):
        data = json.loads(json.dumps(moment_json(moment, explain)))
        assert data["file_id"] == 7
        assert moment_json(moment_from_json(data), explain) == moment_json(moment, explain)
