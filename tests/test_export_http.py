"""The HTTP routes from search to edit: /api/export (GET a search, POST a clip list), /api/clip, /api/transcript,
and image searches kept by hash (/api/search?image=SHA)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from media import GoldenMedia
from serve_index import SmallIndex, make_small_index
from test_serve_http import assert_json_error

from mmsearch.server.app import ServerConfig, create_app

otio = pytest.importorskip("opentimelineio")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, SmallIndex]]:
    small = make_small_index(tmp_path_factory.mktemp("export-http"))
    with TestClient(create_app(ServerConfig(small.index)), base_url="http://127.0.0.1") as c:
        yield c, small


def _ids(client: TestClient) -> dict[str, int]:
    found = client.get("/api/search", params={"q": "red", "fusion": "rrf", "top_k": 20}).json()["results"]
    return {Path(r["path"]).name: r["file_id"] for r in found}


def test_get_export_is_the_search_as_a_timeline(served: tuple[TestClient, SmallIndex]) -> None:
    client, small = served
    params = {"q": "red", "fusion": "rrf", "top_k": 3}
    results = client.get("/api/search", params=params).json()["results"]
    response = client.get("/api/export", params={**params, "format": "edl"})
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == 'attachment; filename="red.edl"'
    timeline = otio.adapters.read_from_string(response.text, "cmx_3600", rate=25)
    clips = list(timeline.find_clips())
    assert len(clips) == len(results)
    got = [otio.url_utils.filepath_from_url(c.media_reference.target_url) for c in clips]
    assert got == [r["path"] for r in results]


def test_post_export_keeps_the_clip_list_order_and_spans(served: tuple[TestClient, SmallIndex]) -> None:
    client, small = served
    ids = _ids(client)
    moments = [
        {"file_id": ids["shots.mp4"], "start": 4.0, "end": 5.0, "kind": "frame", "text": None, "score": 0.5},
        {"file_id": ids["still.png"], "kind": "image"},
        {"file_id": ids["shots.mp4"], "start": 0.5, "end": 1.5, "kind": "frame"},
    ]
    response = client.post("/api/export", params={"format": "otio"}, json={"title": "my list", "moments": moments})
    assert response.status_code == 200, response.text
    timeline = otio.adapters.read_from_string(response.text, "otio_json")
    assert timeline.name == "my list"
    clips = list(timeline.find_clips())
    assert [Path(otio.url_utils.filepath_from_url(c.media_reference.target_url)).name for c in clips] == [
        "shots.mp4", "still.png", "shots.mp4",
    ]  # fmt: skip
    # 25 fps: 0.5 s is inside frame 12 (0.48-0.52 s), where the clip starts
    assert [c.source_range.start_time.to_seconds() for c in clips] == [4.0, 0.0, 0.48]
    assert clips[0].source_range.duration.to_seconds() == 1.0


def test_export_errors(served: tuple[TestClient, SmallIndex]) -> None:
    client, _ = served
    assert_json_error(client.get("/api/export", params={"q": "red", "format": "avid"}), 422, "unknown export format")
    body = {"moments": [{"file_id": 999, "start": 0, "end": 1}]}
    assert_json_error(client.post("/api/export", json=body), 404, "no file with id 999")
    assert_json_error(client.post("/api/export", json={"moments": []}), 422, "moments")
    bad_kind = {"moments": [{"file_id": _ids(client)["shots.mp4"], "start": 0, "end": 1, "kind": "smell"}]}
    assert_json_error(client.post("/api/export", json=bad_kind), 400, "unknown segment kind")


def test_clip_route_cuts_a_moment(served: tuple[TestClient, SmallIndex]) -> None:
    client, _ = served
    ids = _ids(client)
    response = client.get(f"/api/clip/{ids['shots.mp4']}", params={"start": 0.5, "end": 1.5, "exact": True})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    assert 'filename="shots_0.50-1.50.mp4"' in response.headers["content-disposition"]
    assert response.content[4:8] == b"ftyp"
    assert_json_error(client.get(f"/api/clip/{ids['shots.mp4']}", params={"start": 2, "end": 1}), 400, "after")
    assert_json_error(client.get(f"/api/clip/{ids['still.png']}", params={"start": 0, "end": 1}), 400, "still")
    assert_json_error(client.get("/api/clip/999", params={"start": 0, "end": 1}), 404, "999")


def test_an_image_search_is_kept_by_its_hash(served: tuple[TestClient, SmallIndex]) -> None:
    client, small = served
    data = small.still.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    posted = client.post("/api/search", files={"image": ("still.png", data, "image/png")})
    assert posted.status_code == 200, posted.text
    assert posted.json()["image"] == sha and posted.headers["x-mmsearch-image"] == sha
    again = client.get("/api/search", params={"image": sha})
    assert again.status_code == 200 and again.json()["image"] == sha
    assert [r["path"] for r in again.json()["results"]] == [r["path"] for r in posted.json()["results"]]
    preview = client.get(f"/api/query-image/{sha}")
    assert preview.status_code == 200 and preview.content == data
    assert_json_error(client.get("/api/search", params={"image": "0" * 64}), 404, "no longer stored")
    assert_json_error(client.get("/api/query-image/../../etc/passwd"), 404, "")


@pytest.mark.slow
def test_transcript_lists_speech_with_times(golden_index: Path, golden: GoldenMedia, tmp_path: Path) -> None:
    index = tmp_path / "index"
    shutil.copytree(golden_index, index)
    with TestClient(create_app(ServerConfig(index)), base_url="http://127.0.0.1") as client:
        found = client.get("/api/search", params={"q": "red fox", "fusion": "rrf"}).json()["results"]
        talk = next(r["file_id"] for r in found if r["path"] == str(golden.talk))
        lines = client.get(f"/api/transcript/{talk}").json()
        assert lines and all(line["kind"] == "speech" for line in lines)
        assert "fox" in " ".join(line["text"].lower() for line in lines)
        assert abs(lines[0]["start"] - golden.talk_speech_start) < 1.0
        assert_json_error(client.get("/api/transcript/999"), 404, "no file with id 999")
