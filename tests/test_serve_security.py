"""`mmsearch serve` as an attacker tries it (issue 23), over HTTP against a real uvicorn on a loopback port.

Each test names the item of the issue it holds: media that would run as a page, swapped files, DNS rebinding,
uploads that never end, requests that ask for unbounded work, numbers that break parsers, an index replaced
under a running server.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_index import SmallIndex, make_small_index

from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.server.guard import HostPolicy, split_host
from mmsearch.testing.media import make_image
from mmsearch.testing.server import serving

RRF = {"fusion": "rrf"}
SCRIPT = b"<html><script>document.title='PWNED';fetch('/api/search?q=x')</script></html>"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SmallIndex:
    """The read-only index of this module, plus a PNG named page.html with a script appended."""
    root = tmp_path_factory.mktemp("serve-security")
    small = make_small_index(root)
    evil = make_image(root / "media" / "evil.png", "red")
    (root / "media" / "page.html").write_bytes(evil.read_bytes() + SCRIPT)
    evil.unlink()
    assert run_ingest(IngestOptions(paths=(small.media,), index_dir=small.index, model="test:hash", asr=None))
    return small


@pytest.fixture(scope="module")
def url(small: SmallIndex) -> Iterator[str]:
    with serving(create_app(ServerConfig(small.index))) as base:
        yield base


def file_ids(base: str) -> dict[str, int]:
    """File name -> catalog id, from the API itself."""
    ids: dict[str, int] = {}
    for q in ("red", "blue", "testsrc"):
        for r in httpx.get(f"{base}/api/search", params={**RRF, "q": q, "top_k": 50}).json()["results"]:
            ids[Path(r["path"]).name] = r["file_id"]
    return ids


def assert_json_error(response: httpx.Response, status: int, needle: str) -> dict[str, object]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "hint"} and needle in body["error"], body
    return body


# -- 1. a media file never runs as a page ---------------------------------------------------------------


def test_media_type_comes_from_the_content_not_the_name(url: str) -> None:
    ids = file_ids(url)
    evil = httpx.get(f"{url}/media/{ids['page.html']}")
    assert evil.status_code == 200 and evil.content.endswith(SCRIPT)
    assert evil.headers["content-type"] == "image/png"  # what was indexed: a PNG, whatever its name says
    assert evil.headers["x-content-type-options"] == "nosniff"
    assert evil.headers["content-security-policy"].startswith("sandbox")
    video = httpx.get(f"{url}/media/{ids['shots.mp4']}", headers={"Range": "bytes=0-9"})
    assert video.status_code == 206 and video.headers["content-type"] == "video/mp4"
    assert video.headers["content-security-policy"].startswith("sandbox")
    assert httpx.get(f"{url}/media/{ids['still.png']}").headers["content-type"] == "image/png"


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_the_page_has_a_strict_policy(url: str, path: str) -> None:
    response = httpx.get(url + path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text and " style=" not in response.text  # nothing inline to allow


# -- 2. only the bytes that were indexed -----------------------------------------------------------------


@pytest.fixture
def one_image(tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    """A server over an index of one PNG: (base URL, the PNG, its file id). Tests may change the PNG."""
    media = tmp_path / "media"
    media.mkdir()
    still = make_image(media / "still.png", "rgbtestsrc")
    index = tmp_path / "index"
    assert run_ingest(IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=None)).files == 1
    with serving(create_app(ServerConfig(index))) as base:
        found = httpx.get(f"{base}/api/search", params={**RRF, "q": "x"}).json()["results"]
        yield base, still, found[0]["file_id"]


def _swap(path: Path, make: object) -> None:
    path.unlink()
    make(path)  # type: ignore[operator]


@pytest.mark.parametrize(
    "swap",
    [
        pytest.param(lambda p: os.symlink("/etc/passwd", p), id="symlink-to-etc-passwd"),
        pytest.param(lambda p: p.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n"), id="other-content"),
        pytest.param(lambda p: os.mkfifo(p), id="fifo"),
        pytest.param(lambda p: p.mkdir(), id="directory"),
    ],
)
def test_a_file_swapped_after_indexing_is_410_never_served(one_image: tuple[str, Path, int], swap: object) -> None:
    base, still, file_id = one_image
    original = still.read_bytes()
    assert httpx.get(f"{base}/media/{file_id}").content == original
    _swap(still, swap)
    for route in (f"/media/{file_id}", f"/thumbnail/{file_id}?t=0", f"/media/{file_id}"):
        response = httpx.get(base + route, timeout=10)  # a FIFO must not hang the server
        body = assert_json_error(response, 410, "changed since indexing")
        assert "root:" not in response.text and "/" not in str(body["error"])


def test_same_size_and_mtime_through_a_symlink_is_served(one_image: tuple[str, Path, int]) -> None:
    """A file indexed through a symlink keeps working: the link is followed when its target is the indexed file."""
    base, still, file_id = one_image
    real = still.with_name("real.bin")
    os.rename(still, real)
    os.symlink(real, still)
    assert httpx.get(f"{base}/media/{file_id}").content == real.read_bytes()


def test_a_deleted_file_is_404(one_image: tuple[str, Path, int]) -> None:
    base, still, file_id = one_image
    still.unlink()
    assert_json_error(httpx.get(f"{base}/media/{file_id}"), 404, "gone from disk")


# -- 3. DNS rebinding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["/", "/api/search?q=red", "/api/info", "/media/1", "/docs", "/openapi.json"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "", "localhost:x"])
def test_an_unknown_host_name_gets_421_json_on_every_route(url: str, route: str, host: str) -> None:
    response = httpx.get(url + route, headers={"Host": host})
    assert_json_error(response, 421, "does not answer for the host name")
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "[::1]:{port}"])
def test_the_bound_address_and_loopback_names_are_answered(url: str, host: str) -> None:
    port = url.rsplit(":", 1)[1]
    assert httpx.get(url + "/api/info", headers={"Host": host.format(port=port)}).status_code == 200


def test_allow_host_names_more(small: SmallIndex) -> None:
    with serving(create_app(ServerConfig(small.index, allow_hosts=("search.example.org",)))) as base:
        assert httpx.get(base + "/", headers={"Host": "search.example.org"}).status_code == 200
        assert httpx.get(base + "/", headers={"Host": "Search.Example.Org.:443"}).status_code == 200
        assert httpx.get(base + "/", headers={"Host": "other.example.org"}).status_code == 421


def test_host_policy_of_a_wildcard_and_a_specific_bind() -> None:
    wildcard = HostPolicy("0.0.0.0")
    assert wildcard.allows("192.168.1.20:8000") and wildcard.allows("[fe80::1]") and wildcard.allows("localhost")
    assert not wildcard.allows("nas.local") and not wildcard.allows(None)
    lan = HostPolicy("192.168.1.20", ["nas.local"])
    assert lan.allows("192.168.1.20") and lan.allows("nas.local:8000") and lan.allows("127.0.0.1")
    assert not lan.allows("192.168.1.21")
    assert split_host("[::1]:80") == ("[::1]", "80") and split_host("Example.org.") == ("example.org", None)


# -- 4. uploads are limited while they arrive -------------------------------------------------------------


def _raw(base: str, head: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(head.encode())
    return sock


def _read_answer(sock: socket.socket) -> str:
    """Headers and JSON body of one response."""
    data = b""
    while not data.rstrip().endswith(b"}"):
        more = sock.recv(65536)
        if not more:
            break
        data += more
    return data.decode("latin-1")


def test_a_declared_length_over_the_limit_is_refused_before_the_body(url: str) -> None:
    port = url.rsplit(":", 1)[1]
    head = (
        f"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {300 * 1024 * 1024}\r\n\r\n"
    )
    with _raw(url, head) as sock:  # not one byte of the 300 MB body is sent
        answer = _read_answer(sock)
    assert answer.startswith("HTTP/1.1 413"), answer[:200]
    assert '"error"' in answer and "larger than" in answer


def test_a_chunked_upload_is_refused_at_the_limit_while_it_streams(small: SmallIndex) -> None:
    limit = 1000
    with serving(create_app(ServerConfig(small.index, max_upload_bytes=limit))) as base:
        port = base.rsplit(":", 1)[1]
        head = (
            f"POST /api/search?q=x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"--x\r\nContent-Disposition: form-data; name=image; filename=a.png\r\n\r\n" + b"\0" * 65536
        sent, answer = 0, b""
        with _raw(base, head) as sock:
            sock.settimeout(0.05)
            while sent < 200 * 1024 * 1024 and not answer:
                try:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                    answer = sock.recv(65536)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            sock.settimeout(10)
            answer = answer or sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Refused after the limit (+ the multipart allowance) arrived, not after the 200 MiB: socket buffers only.
    assert sent < 16 * 1024 * 1024, sent


# -- 5. bounded work per request ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"q": "red", "then": ["blue"] * 9}, "then"),
        ({"q": "r" * 1001}, "q"),
        ({"q": "red", "then": ["b" * 1001]}, "1001 characters"),
        ({"q": "red", "top_k": 1001}, "top_k"),
        ({"q": "red", "weight": "visual=101"}, "from 0 to 100"),
        ({"q": "red", "weight": "visual=1e308"}, "from 0 to 100"),
        ({"q": "red", "weight": "visual=nan"}, "from 0 to 100"),
        ({"q": "red", "weight": "visual=-inf"}, "from 0 to 100"),
        ({"q": "red", "then": "blue", "within": "inf"}, "within"),
        ({"q": "red", "then": "blue", "within": 1e9}, "within"),
    ],
)
def test_requests_over_the_bounds_are_422(url: str, params: dict[str, object], needle: str) -> None:
    assert_json_error(httpx.get(f"{url}/api/search", params={**RRF, **params}), 422, needle)


def test_eight_then_parts_are_answered(url: str) -> None:
    response = httpx.get(f"{url}/api/search", params={**RRF, "q": "red", "then": ["blue"] * 8}, timeout=60)
    assert response.status_code == 200, response.text


# -- 6. no server paths, no CLI flags ---------------------------------------------------------------------


def test_headers_and_errors_reveal_no_server_path(url: str, small: SmallIndex) -> None:
    response = httpx.get(f"{url}/api/search", params={**RRF, "q": "red"})
    served = response.headers["x-mmsearch-index"]
    assert "/" not in served and str(small.index.parent) not in response.headers.get("x-mmsearch-index", "")
    assert httpx.get(f"{url}/api/info").json()["index"] == small.index.name
    bad = httpx.post(f"{url}/api/search", files={"image": ("x.png", b"not an image")})
    body = assert_json_error(bad, 400, "not a readable image")
    assert "/tmp" not in bad.text and "--" not in bad.text and "mmsearch-upload" not in bad.text, body


def test_no_index_error_names_no_path(tmp_path: Path) -> None:
    with serving(create_app(ServerConfig(tmp_path / "nothing-here"))) as base:
        response = httpx.get(f"{base}/api/info")
        assert_json_error(response, 404, "no index")
        assert str(tmp_path) not in response.text and "--index" not in response.text


# -- 7. never a 500, never a non-JSON number ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status"),
    [("bytes=0-" + "9" * 4300, 206), ("bytes=" + "9" * 4300 + "-", 416), ("bytes=-" + "9" * 4300, 206)],
)
def test_a_range_with_a_4300_digit_number(url: str, header: str, status: int) -> None:
    ids = file_ids(url)
    response = httpx.get(f"{url}/media/{ids['still.png']}", headers={"Range": header})
    assert response.status_code == status, response.text[:200]


@pytest.mark.parametrize("end", ["1e300", "inf", "nan", "1e400"])
def test_like_with_an_absurd_end_is_422(url: str, end: str) -> None:
    ids = file_ids(url)
    response = httpx.get(f"{url}/api/search", params={"like": ids["shots.mp4"], "start": 0, "end": end})
    assert_json_error(response, 422, "end")


@pytest.mark.parametrize("t", ["1e300", "inf", "nan", "-1"])
def test_thumbnail_time_out_of_range_is_422(url: str, t: str) -> None:
    ids = file_ids(url)
    assert_json_error(httpx.get(f"{url}/thumbnail/{ids['shots.mp4']}", params={"t": t}), 422, "t")


def _bomb_png(width: int, height: int, size: int) -> bytes:
    """A PNG whose header says width x height (a decompression bomb to Pillow), padded to `size` bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    idat = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    head = b"\x89PNG\r\n\x1a\n" + ihdr + idat
    pad = size - len(head) - 12 - 12
    assert pad >= 0
    return head + chunk(b"tEXt", b"x" * pad) + chunk(b"IEND", b"")


def test_thumbnail_of_a_20000px_png_is_422_not_500(one_image: tuple[str, Path, int]) -> None:
    """An image replaced by a bomb of the very same size and mtime (so it passes the identity check)."""
    base, still, file_id = one_image
    st = still.stat()
    still.write_bytes(_bomb_png(20000, 20000, st.st_size))
    os.utime(still, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert_json_error(httpx.get(f"{base}/thumbnail/{file_id}?t=0"), 422, "too large")
    assert httpx.get(f"{base}/api/info").status_code == 200  # and it keeps serving


def test_scores_are_finite_at_the_highest_weights(url: str) -> None:
    params = {"q": "red", "fusion": "weighted", "weight": ["visual=100", "keyword=100"], "explain": "true"}
    response = httpx.get(f"{url}/api/search", params=params)
    assert response.status_code == 200
    body = json.loads(response.text, parse_constant=lambda c: pytest.fail(f"non-JSON number {c}"))
    assert body["results"] and all(r["score"] is not None for r in body["results"])


# -- 9. the server follows the index, and only the live one ---------------------------------------------------


def test_an_index_deleted_and_rebuilt_under_a_running_server(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_image(media / "a.png", "red")
    make_image(media / "b.png", "blue")
    index = tmp_path / "index"
    assert run_ingest(IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=None)).files == 2
    with serving(create_app(ServerConfig(index))) as base:
        assert httpx.get(f"{base}/api/info").json()["files"] == 2
        ids = {Path(r["path"]).name: r["file_id"] for r in _all(base)}
        shutil.rmtree(index)
        assert_json_error(httpx.get(f"{base}/api/info"), 503, "no index")
        assert_json_error(httpx.get(f"{base}/media/{ids['b.png']}"), 503, "no index")
        (media / "b.png").unlink()  # dropped from the rebuilt index
        assert run_ingest(IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=None)).files == 1
        assert httpx.get(f"{base}/api/info").json()["files"] == 1
        assert [Path(r["path"]).name for r in _all(base)] == ["a.png"]
        # Ids restart in the new catalog: whatever an old id names now, it is never the dropped file.
        a_bytes = (media / "a.png").read_bytes()
        for old_id in ids.values():
            served = httpx.get(f"{base}/media/{old_id}")
            assert served.status_code == 404 or served.content == a_bytes


def _all(base: str) -> list[dict[str, object]]:
    results: list[dict[str, object]] = httpx.get(f"{base}/api/search", params={**RRF, "q": "x", "top_k": 50}).json()[
        "results"
    ]
    return results


def test_a_server_started_before_the_index_serves_it_once_built(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_image(media / "a.png", "red")
    index = tmp_path / "index"
    with serving(create_app(ServerConfig(index))) as base:
        assert_json_error(httpx.get(f"{base}/api/info"), 404, "no index")
        assert run_ingest(IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=None)).files == 1
        deadline = time.monotonic() + 5
        while httpx.get(f"{base}/api/info").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert httpx.get(f"{base}/api/info").json()["files"] == 1
