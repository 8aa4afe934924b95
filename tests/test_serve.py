"""The HTTP API with FastAPI's TestClient: every endpoint, every error path, and an index changing under it."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from serve_index import SmallIndex, add_media, make_small_index
from typer.testing import CliRunner

from mmsearch.cli.app import app as cli
from mmsearch.index.remove import remove_paths
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.testing.media import Shot, make_image, make_video

# Rank fusion lists every candidate; the default (calibrated) keeps only what stands out, which for the
# hash test embedder is often nothing, and these tests are about the server, not about fusion.
RRF = {"fusion": "rrf"}
EXTRA_FIELDS = {"media_kind", "media_url", "thumbnail_url", "matched_words"}  # file_id is in the CLI's JSON too


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SmallIndex:
    return make_small_index(tmp_path_factory.mktemp("serve"))


@pytest.fixture
def client(small: SmallIndex) -> Iterator[TestClient]:
    with TestClient(create_app(ServerConfig(small.index)), base_url="http://127.0.0.1") as c:
        yield c


def cli_json(*args: str) -> object:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_error(response: object, status: int, needle: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "hint"} and needle in body["error"], body
    assert "Traceback" not in response.text  # type: ignore[attr-defined]


# -- search -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("explain", [False, True])
def test_search_has_exactly_the_cli_json_fields_plus_media(
    client: TestClient, small: SmallIndex, explain: bool
) -> None:
    flags = ["--explain"] if explain else []
    expected = cli_json("query", "red", "--index", str(small.index), "--json", "-k", "3", "--fusion", "rrf", *flags)
    response = client.get("/api/search", params={**RRF, "q": "red", "top_k": 3, "explain": explain})
    assert response.status_code == 200
    served = response.json()
    stripped = {
        "query": served["query"],
        "results": [{k: v for k, v in r.items() if k not in EXTRA_FIELDS} for r in served["results"]],
    }
    assert stripped == expected
    ids = {r["path"]: r["file_id"] for r in served["results"]}
    for r in served["results"]:
        assert r["media_url"] == f"/media/{r['file_id']}"
        assert set(r) - set(stripped["results"][0]) == EXTRA_FIELDS
    video = next(r for r in served["results"] if r["path"] == str(small.video))
    assert video["media_kind"] == "video"
    assert video["thumbnail_url"] == f"/thumbnail/{ids[str(small.video)]}?t={(video['start'] + video['end']) / 2:.1f}"


def test_search_filters_and_top_k(client: TestClient, small: SmallIndex) -> None:
    images = client.get("/api/search", params={**RRF, "q": "colour bars", "modality": "image"}).json()["results"]
    assert [r["path"] for r in images] == [str(small.still)]
    assert images[0]["thumbnail_url"] == f"/thumbnail/{images[0]['file_id']}"
    one = client.get("/api/search", params={**RRF, "q": "red", "top_k": 1, "channel": "visual"}).json()["results"]
    assert len(one) == 1


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"q": "   "}, "empty"),
        ({}, "give a query text"),
        ({"q": "x", "modality": "smell"}, "modality must be one of"),
        ({"q": "x", "channel": "telepathy"}, "unknown channel"),
        ({"q": "x", "fusion": "magic"}, "fusion must be one of"),
        ({"q": "x", "top_k": 0}, "top_k"),
        ({"q": "x", "top_k": "many"}, "top_k"),
        ({"like": "1", "start": 1}, "both start and end"),
        ({"like": "1", "start": 3, "end": 1}, "END must be greater"),
        ({"like": "1", "q": "red"}, "only one of"),
    ],
)
def test_bad_search_parameters_are_422(client: TestClient, params: dict[str, object], needle: str) -> None:
    response = client.get("/api/search", params=params)
    assert_error(response, 422, needle)
    assert "--" not in response.text  # API parameters, not the CLI's flags


def test_like_a_moment_leaves_the_example_out(client: TestClient, small: SmallIndex) -> None:
    video_id = client.get("/api/search", params={**RRF, "q": "red", "modality": "video"}).json()["results"][0][
        "file_id"
    ]
    response = client.get("/api/search", params={**RRF, "like": video_id, "start": 0, "end": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == f"like:{small.video}@0-2"
    spans = [(r["path"], r["start"]) for r in body["results"]]
    assert (str(small.video), 0.0) not in spans and (str(small.video), 2.0) in spans
    whole = client.get("/api/search", params={**RRF, "like": video_id}).json()["results"]
    assert [r["path"] for r in whole] == [str(small.still)]


def test_like_a_deleted_file_with_an_at_in_its_name(tmp_path: Path) -> None:
    """Query by example reads stored vectors: an indexed file gone from disk, named `a@b.mp4`, is still an
    example, by its file id over HTTP and by its path (whole, or @START-END) on the command line, alike."""
    small = make_small_index(tmp_path)
    odd = make_video(small.media / "a@b.mp4", [Shot("red", 2), Shot("blue", 2)], audio=False).path
    add_media(small.index, odd)
    odd.unlink()
    with TestClient(create_app(ServerConfig(small.index)), base_url="http://127.0.0.1") as c:
        found = c.get("/api/search", params={**RRF, "q": "red", "modality": "video", "top_k": 20}).json()["results"]
        odd_id = next(r["file_id"] for r in found if r["path"] == str(odd))
        for span, spec in (({}, str(odd)), ({"start": 0, "end": 2}, f"{odd}@0-2")):
            response = c.get("/api/search", params={**RRF, "like": odd_id, **span})
            assert response.status_code == 200, response.text
            served = response.json()
            assert served["query"] == f"like:{spec}" and served["results"]
            spans = [(r["file_id"], r["start"]) for r in served["results"]]
            assert all(i != odd_id for i, _ in spans) if not span else (odd_id, 0.0) not in spans
            expected = cli_json("query", "--like", spec, "--index", str(small.index), "--json", "--fusion", "rrf")
            results = [{k: v for k, v in r.items() if k not in EXTRA_FIELDS} for r in served["results"]]
            assert expected == {"query": served["query"], "results": results}


@pytest.mark.parametrize("like", ["999", "../still.png", "%2e%2e", "/etc/passwd", "-1", "1.0"])
def test_like_unknown_or_non_id_is_404(client: TestClient, like: str) -> None:
    assert_error(client.get("/api/search", params={**RRF, "like": like}), 404, "no file with id")


# -- image upload -------------------------------------------------------------------------------------


def test_image_upload_finds_the_same_image(client: TestClient, small: SmallIndex) -> None:
    response = client.post(
        "/api/search", params={**RRF, "top_k": 2}, files={"image": ("q.png", small.still.read_bytes())}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == "image:q.png"
    assert body["results"][0]["path"] == str(small.still)
    expected = cli_json(
        "query", "--image", str(small.still), "--index", str(small.index), "--json", "-k", "2", "--fusion", "rrf"
    )
    assert [{k: v for k, v in r.items() if k not in EXTRA_FIELDS} for r in body["results"]] == expected["results"]  # type: ignore[index]


def test_unreadable_image_is_400(client: TestClient) -> None:
    response = client.post("/api/search", files={"image": ("q.jpg", b"\xff\xd8 not really a jpeg" * 10)})
    assert_error(response, 400, "not a readable image")


def test_missing_image_field_is_422(client: TestClient) -> None:
    assert_error(client.post("/api/search", files={"other": ("q.png", b"x")}), 422, "image")


def test_upload_over_the_limit_is_413(small: SmallIndex) -> None:
    with TestClient(create_app(ServerConfig(small.index, max_upload_bytes=1000)), base_url="http://127.0.0.1") as c:
        response = c.post("/api/search", files={"image": ("big.png", small.still.read_bytes())})
        assert small.still.stat().st_size > 1000
        assert_error(response, 413, "larger than 1000 bytes")
        assert c.post("/api/search", files={"image": ("tiny.png", _png(8))}).status_code == 200


def _png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), (255, 0, 0)).save(out, format="PNG")
    return out.getvalue()


# -- info, docs, unknown routes -----------------------------------------------------------------------


def test_info_is_mmsearch_info_json(client: TestClient, small: SmallIndex) -> None:
    response = client.get("/api/info")
    assert response.status_code == 200
    served = response.json()
    channels = served.pop("channels")  # the one field the server adds: what the page's channel filters list
    local = cli_json("info", "--index", str(small.index), "--json")
    assert isinstance(local, dict) and served == {**local, "index": small.index.name}  # the name, not the path
    assert [c["name"] for c in channels] == ["visual"]  # frames and a still; no speech, no extra spaces


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/search", "/api/info", "/media/{file_id}", "/thumbnail/{file_id}"} <= set(paths)
    assert set(paths["/api/search"]) == {"get", "post"}
    assert client.get("/docs").status_code == 200


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    assert_error(client.get("/api/nothing"), 404, "Not Found")
    assert_error(client.delete("/api/search"), 405, "Method Not Allowed")


def test_page_and_its_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("/static/app.js", "/static/style.css", "/favicon.ico"):
        assert client.get(asset).status_code == 200, asset
        # Offline machines: nothing is fetched from anywhere but this server.
        if asset.startswith("/static/"):
            assert "://" not in client.get(asset).text, asset
    assert "://" not in page.text


# -- media and Range ----------------------------------------------------------------------------------


def _video_id(client: TestClient) -> int:
    return int(
        client.get("/api/search", params={**RRF, "q": "red", "modality": "video"}).json()["results"][0]["file_id"]
    )


def test_media_whole_file(client: TestClient, small: SmallIndex) -> None:
    response = client.get(f"/media/{_video_id(client)}")
    assert response.status_code == 200
    assert response.content == small.video.read_bytes()
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-99", 0, 99), ("bytes=100-", 100, None), ("bytes=-100", -100, None), ("bytes=50-50", 50, 50)],
)
def test_media_range_requests(client: TestClient, small: SmallIndex, header: str, first: int, last: int | None) -> None:
    data = small.video.read_bytes()
    size = len(data)
    start = first if first >= 0 else size + first
    end = last if last is not None else size - 1
    response = client.get(f"/media/{_video_id(client)}", headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == data[start : end + 1]


def test_media_range_past_the_end_is_416(client: TestClient, small: SmallIndex) -> None:
    size = small.video.stat().st_size
    response = client.get(f"/media/{_video_id(client)}", headers={"Range": f"bytes={size}-{size + 10}"})
    assert_error(response, 416, "outside the file")
    assert response.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize(
    "path",
    [
        "/media/999",
        "/media/0",
        "/media/-1",
        "/media/1.5",
        "/media/%2e%2e",
        "/media/..%2f..%2fetc%2fpasswd",
        "/media/%2fetc%2fpasswd",
        "/media/%252e%252e%252fetc",
        "/media/still.png",
        "/thumbnail/999",
        "/thumbnail/%2e%2e",
        "/thumbnail/..%2fcatalog.sqlite",
    ],
)
def test_media_by_anything_but_a_known_id_is_404_json(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, (path, response.text)
    assert set(response.json()) == {"error", "hint"}
    assert client.get("/api/search", params={**RRF, "q": "red"}).status_code == 200  # and it keeps serving


def test_file_deleted_since_indexing_is_404(tmp_path: Path) -> None:
    small = make_small_index(tmp_path)
    with TestClient(create_app(ServerConfig(small.index)), base_url="http://127.0.0.1") as c:
        still_id = c.get("/api/search", params={**RRF, "q": "x", "modality": "image"}).json()["results"][0]["file_id"]
        small.still.unlink()
        assert_error(c.get(f"/media/{still_id}"), 404, "gone from disk")
        assert_error(c.get(f"/thumbnail/{still_id}"), 404, "gone from disk")
        assert c.get(f"/media/{_video_id(c)}").status_code == 200


# -- thumbnails ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "rgb"), [(1.0, (255, 0, 0)), (5.0, (0, 0, 255))])
def test_thumbnail_is_the_frame_at_t(client: TestClient, small: SmallIndex, t: float, rgb: tuple[int, ...]) -> None:
    response = client.get(f"/thumbnail/{_video_id(client)}", params={"t": t})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and max(image.size) <= 480
    pixel = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    assert all(abs(a - b) < 40 for a, b in zip(pixel, rgb, strict=True)), pixel
    assert any((small.index / "thumbnails").glob("*.jpg"))


def test_thumbnail_of_a_still_is_the_image(client: TestClient, small: SmallIndex) -> None:
    still_id = client.get("/api/search", params={**RRF, "q": "x", "modality": "image"}).json()["results"][0]["file_id"]
    image = Image.open(io.BytesIO(client.get(f"/thumbnail/{still_id}", params={"t": 99}).content))
    assert image.size == Image.open(small.still).size


def test_thumbnail_cache_goes_to_user_cache_when_index_is_read_only(
    small: SmallIndex, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mmsearch.server import media

    monkeypatch.setattr(media.os, "access", lambda path, mode: False)
    cache = media.thumbnail_cache_dir(small.index)
    assert cache.is_relative_to(tmp_path / "cache") and "thumbnails" in cache.parts


# -- token --------------------------------------------------------------------------------------------


def test_token_is_required_on_api_and_media_but_not_the_page_shell(small: SmallIndex) -> None:
    with TestClient(create_app(ServerConfig(small.index, token="s3cret")), base_url="http://127.0.0.1") as c:
        for path in ("/api/search?q=red", "/api/info", "/media/1", "/thumbnail/1", "/openapi.json"):
            assert_error(c.get(path), 401, "token")
            assert_error(c.get(path, headers={"Authorization": "Bearer wrong"}), 401, "token")
        assert c.get("/").status_code == 200 and c.get("/static/app.js").status_code == 200
        assert c.get("/api/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/api/info", params={"token": "s3cret"}).status_code == 200
        # The page opened with ?token= sets a cookie, so <video> and <img> requests carry it.
        assert c.get("/", params={"token": "s3cret"}).status_code == 200
        assert c.get("/media/1").status_code == 200


# -- the index changing under the server --------------------------------------------------------------


def test_commits_and_removals_become_visible_without_restart(tmp_path: Path) -> None:
    small = make_small_index(tmp_path)
    with TestClient(create_app(ServerConfig(small.index)), base_url="http://127.0.0.1") as c:
        before = c.get("/api/info").json()
        first = c.get("/api/search", params={**RRF, "q": "x", "modality": "image"}).json()["results"][0]
        assert first["path"] == str(small.still)
        (tmp_path / "more").mkdir()
        extra = make_image(tmp_path / "more" / "green.png", "green")
        add_media(small.index, extra.parent)
        after = c.get("/api/info").json()
        assert after["generation"] > before["generation"] and after["files"] == 3
        paths = {
            r["path"] for r in c.get("/api/search", params={**RRF, "q": "x", "modality": "image"}).json()["results"]
        }
        assert paths == {str(small.still), str(extra)}
        remove_paths(small.index, [small.still])
        results = c.get("/api/search", params={**RRF, "q": "x", "top_k": 50}).json()["results"]
        assert results and str(small.still) not in {r["path"] for r in results}
        assert_error(c.get(f"/media/{first['file_id']}"), 404, "no file with id")
        assert c.get("/api/info").json()["files"] == 2


def test_no_index_yet_then_first_index_is_served(tmp_path: Path) -> None:
    index = tmp_path / "later"
    with TestClient(create_app(ServerConfig(index)), base_url="http://127.0.0.1") as c:
        assert_error(c.get("/api/search", params={**RRF, "q": "red"}), 404, "no index")
        assert_error(c.get("/api/info"), 404, "no index")
        assert c.get("/").status_code == 200
        media = tmp_path / "m"
        media.mkdir()
        make_image(media / "a.png", "red")
        add_media(index, media)
        assert c.get("/api/search", params={**RRF, "q": "red"}).json()["results"][0]["path"] == str(media / "a.png")


@pytest.mark.slow
def test_requests_during_commits_all_succeed_and_see_whole_generations(tmp_path: Path) -> None:
    small = make_small_index(tmp_path)
    statuses: list[int] = []
    seen: list[set[str]] = []
    stop = threading.Event()

    def client_loop(c: TestClient) -> None:
        while not stop.is_set():
            response = c.get("/api/search", params={**RRF, "q": "x", "modality": "image", "top_k": 50})
            statuses.append(response.status_code)
            if response.status_code == 200:
                seen.append({Path(r["path"]).name for r in response.json()["results"]})

    with TestClient(create_app(ServerConfig(small.index)), base_url="http://127.0.0.1") as c:
        thread = threading.Thread(target=client_loop, args=(c,))
        thread.start()
        try:
            for colour in ("red", "green", "blue"):
                folder = tmp_path / colour
                folder.mkdir()
                make_image(folder / f"{colour}.png", colour)
                add_media(small.index, folder)  # one commit per image
        finally:
            stop.set()
            thread.join()
        final = {
            Path(r["path"]).name
            for r in c.get("/api/search", params={**RRF, "q": "x", "modality": "image"}).json()["results"]
        }
    assert statuses and set(statuses) == {200}
    assert final == {"still.png", "red.png", "green.png", "blue.png"}
    # Every answer is one committed state: images appear in commit order, never out of it.
    order = ["red.png", "green.png", "blue.png"]
    assert all(s == {"still.png", *order[: len(s) - 1]} for s in seen), seen
