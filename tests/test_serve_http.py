"""The HTTP API beyond search: /docs without a CDN, Range headers by RFC 9110, and the channels /api/info lists."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serve_index import SmallIndex, make_small_index

from mmsearch.ingest.extras import ExtrasOptions
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.testing.media import Shot, Utterance, make_audio, make_image, make_video

# What the docs page loads: <script src> and <link href>.
ASSET_URL = re.compile(r'<(?:script|link)[^>]*?(?:src|href)="([^"]+)"')
ASSET_TYPES = {".js": "javascript", ".css": "text/css"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, SmallIndex]]:
    """One server for the module: these tests only read."""
    small = make_small_index(tmp_path_factory.mktemp("serve-http"))
    with TestClient(create_app(ServerConfig(small.index)), base_url="http://127.0.0.1") as c:
        yield c, small


@pytest.fixture
def client(served: tuple[TestClient, SmallIndex]) -> TestClient:
    return served[0]


@pytest.fixture
def small(served: tuple[TestClient, SmallIndex]) -> SmallIndex:
    return served[1]


def assert_json_error(response: object, status: int, needle: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "hint"} and needle in body["error"] and body["hint"], body


# -- /docs on an offline machine ----------------------------------------------------------------------


def test_docs_page_loads_only_from_this_server(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "://" not in response.text  # no CDN, no fonts service, no remote favicon
    assert "<script>" not in response.text  # Swagger UI is started by a script file (the CSP allows no inline one)
    urls = ASSET_URL.findall(response.text)
    assert "/openapi.json" in client.get("/static/docs.js").text
    assert {Path(u).suffix for u in urls} >= {".js", ".css"}, urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin
        asset = client.get(url)
        assert asset.status_code == 200 and asset.content, url
        kind = ASSET_TYPES.get(Path(url).suffix)
        if kind is not None and url.startswith("/docs/assets/"):  # Swagger UI itself, not a stub
            assert kind in asset.headers["content-type"] and len(asset.content) > 100_000, url
    assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page would load from a CDN: not served


def test_docs_follow_the_token_rule_and_their_assets_need_none(small: SmallIndex) -> None:
    with TestClient(create_app(ServerConfig(small.index, token="s3cret")), base_url="http://127.0.0.1") as c:
        for path in ("/docs", "/openapi.json"):
            assert_json_error(c.get(path), 401, "token")
        script = re.search(r'<script src="([^"]+)"', c.get("/docs", params={"token": "s3cret"}).text)
        assert script is not None
        c.cookies.clear()
        assert c.get(script.group(1)).status_code == 200  # Swagger UI itself is no secret
        # Opening /docs?token=T sets the cookie that Swagger UI's own fetch of the schema then carries.
        assert c.get("/docs", params={"token": "s3cret"}).status_code == 200
        assert c.get("/openapi.json").status_code == 200


# -- Range ---------------------------------------------------------------------------------------------


def _media(client: TestClient, small: SmallIndex) -> tuple[str, bytes]:
    results = client.get("/api/search", params={"q": "red", "modality": "video", "fusion": "rrf"}).json()["results"]
    return results[0]["media_url"], small.video.read_bytes()


@pytest.mark.parametrize(
    "header",
    ["bytes={size}-", "bytes={size}-{size_10}", "bytes=-0", "bytes={size_10}-, {size}-{size_10}", "BYTES={size}-"],
)
def test_no_satisfiable_range_is_416_json_with_the_size(client: TestClient, small: SmallIndex, header: str) -> None:
    url, data = _media(client, small)
    size = len(data)
    response = client.get(url, headers={"Range": header.format(size=size, size_10=size + 10)})
    assert_json_error(response, 416, "outside the file")
    assert response.headers["content-range"] == f"bytes */{size}"
    assert client.get(url).status_code == 200  # and it keeps serving


@pytest.mark.parametrize(
    "header",
    ["items=0-5", "0-5", "bytes=abc", "bytes=9-2", "bytes=", "bytes=-", "bytes=1-2-3", "bytes=0-5,x", "bytes=--5"],
)
def test_unknown_unit_or_invalid_range_is_ignored_whole_file(
    client: TestClient, small: SmallIndex, header: str
) -> None:
    url, data = _media(client, small)
    response = client.get(url, headers={"Range": header})
    assert response.status_code == 200, (header, response.status_code, response.text[:200])
    assert response.content == data and "content-range" not in response.headers


def test_ranges_partly_past_the_end_serve_the_part_inside(client: TestClient, small: SmallIndex) -> None:
    url, data = _media(client, small)
    size = len(data)
    response = client.get(url, headers={"Range": f"bytes=0-9, {size + 5}-"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 0-9/{size}" and response.content == data[:10]
    # A suffix longer than the file is the whole file, and an end past it stops at the last byte.
    for header in (f"bytes=-{size + 100}", f"bytes=0-{size + 100}"):
        response = client.get(url, headers={"Range": header})
        assert response.status_code == 206 and response.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
        assert response.content == data


def test_two_ranges_are_multipart(client: TestClient, small: SmallIndex) -> None:
    url, data = _media(client, small)
    response = client.get(url, headers={"Range": "bytes=0-9,20-29"})
    assert response.status_code == 206
    assert response.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert data[:10] in response.content and data[20:30] in response.content


def test_if_range_of_another_version_gets_the_whole_file_even_past_the_end(
    client: TestClient, small: SmallIndex
) -> None:
    url, data = _media(client, small)
    etag = client.get(url, headers={"Range": "bytes=0-0"}).headers["etag"]
    stale = {"If-Range": '"not-this-version"', "Range": f"bytes={len(data)}-"}
    response = client.get(url, headers=stale)
    assert response.status_code == 200 and response.content == data
    response = client.get(url, headers={"If-Range": etag, "Range": "bytes=0-9"})
    assert response.status_code == 206 and response.content == data[:10]


# -- channels the index has ------------------------------------------------------------------------------


@pytest.mark.slow
def test_info_lists_the_channels_the_index_has_with_labels(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_image(media / "still.png", "rgbtestsrc")
    make_audio(media / "bell.wav", [Utterance("ding dong", 0.5)])
    make_video(media / "hall.mp4", [Shot("red", 3), Shot("blue", 3)], [Utterance("ding dong", 1.0)], audio=True)
    extras = ExtrasOptions(audio_model="random:clap-tiny")  # an audio space; no speech (asr off), no text space
    options = IngestOptions(paths=(media,), index_dir=tmp_path / "idx", model="test:hash", asr=None, extras=extras)
    assert run_ingest(options).failed == []
    with TestClient(create_app(ServerConfig(tmp_path / "idx")), base_url="http://127.0.0.1") as c:
        info = c.get("/api/info").json()
        assert [ch["name"] for ch in info["channels"]] == ["visual", "audio"]  # frames and a still; sound windows
        assert {ch["name"]: ch["label"] for ch in info["channels"]} == {"visual": "Pictures", "audio": "Sounds"}
        assert all(ch["about"] and set(ch["queries"]) == {"text", "image", "like"} for ch in info["channels"][:1])
        assert info["channels"][1]["queries"] == ["text"]  # the audio space is searched with words only
        # Each listed channel is one /api/search accepts for a text query on this index.
        for ch in info["channels"]:
            assert c.get("/api/search", params={"q": "bell", "channel": ch["name"]}).status_code == 200
        assert c.get("/api/search", params={"q": "bell", "channel": "text"}).status_code == 422
        # More like this of a video with sound windows: the example's vectors are its frames (CLIP), not its
        # sound windows (which have vectors only in the audio space).
        hall = next(r for r in c.get("/api/search", params={"q": "red", "modality": "video", "fusion": "rrf"}).json()[
            "results"] if r["path"].endswith("hall.mp4"))  # fmt: skip
        like = c.get("/api/search", params={"like": hall["file_id"], "start": 0, "end": 6, "fusion": "rrf"})
        assert like.status_code == 200, like.text
