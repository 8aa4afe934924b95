"""People end to end on real faces, through the CLI: videos composed from ../shared/faces (see
mmsearch.testing.faces) and a still-image album are indexed with --faces; a photo of a person finds the spans
where another photo of that person is shown and never the other person's; two people are two identities; a name
carries to text queries; `people forget` leaves nothing of the person behind."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.ingest.faces import faces_installed
from mmsearch.testing.faces import FACES_DIR, FaceVideo, compose_archive, photo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FACES_DIR.is_dir(), reason="needs ../shared/faces"),
    pytest.mark.skipif(not faces_installed(), reason="needs the faces extra (dlib-bin, face-recognition-models)"),
]
runner = CliRunner()
INDEX_ARGS = ["--model", "test:hash", "--no-asr", "--no-ocr", "--text-model", "none", "--faces", "--json"]


def cli(*args: str | Path, code: int = 0) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def cli_json(*args: str | Path) -> object:
    return json.loads(cli(*args, "--json"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, FaceVideo], Path]:
    folder = tmp_path_factory.mktemp("archive")
    videos = compose_archive(folder / "videos")
    index = folder / "index"
    cli("index", folder / "videos", "--index", index, *INDEX_ARGS)
    return videos, index


@pytest.fixture
def index(archive: tuple[dict[str, FaceVideo], Path], tmp_path: Path) -> Path:
    """A copy of the archive's index, for a test that changes it."""
    return Path(shutil.copytree(archive[1], tmp_path / "index"))


def truth(videos: dict[str, FaceVideo], person: str) -> dict[str, list[tuple[float, float]]]:
    """Per file name, the spans the person is on screen, touching spans joined (as moments join them)."""
    found: dict[str, list[tuple[float, float]]] = {}
    for name, video in videos.items():
        for start, end in sorted(video.spans_of(person)):
            spans = found.setdefault(name, [])
            if spans and abs(spans[-1][1] - start) < 1e-6:
                spans[-1] = (spans[-1][0], end)
            elif (start, end) not in spans:
                spans.append((start, end))
    return found


def matches(result: dict, spans: dict[str, list[tuple[float, float]]]) -> bool:
    """The result is one of the spans, both ends within 1 s."""
    name = Path(str(result["path"])).name
    return any(abs(result["start"] - a) <= 1.0 and abs(result["end"] - b) <= 1.0 for a, b in spans.get(name, []))


def face_query(index: Path, picture: Path, *extra: str) -> list[dict]:
    out = cli_json("query", "--face", picture, "--index", index, *extra)
    assert isinstance(out, dict)
    return list(out["results"])


@pytest.mark.parametrize(
    ("query_photo", "person", "other"), [("obama2.jpg", "obama", "biden"), ("biden2.jpg", "biden", "obama")]
)
def test_a_photo_finds_every_span_of_that_person_and_no_other(
    archive: tuple[dict[str, FaceVideo], Path], query_photo: str, person: str, other: str
) -> None:
    videos, index = archive
    wanted, unwanted = truth(videos, person), truth(videos, other)
    results = face_query(index, photo(query_photo), "--top-k", "20")
    assert results and all(r["kind"] == "face" for r in results)
    assert matches(results[0], wanted)  # R@1 = 1
    assert all(matches(r, wanted) for r in results), results
    # Recall: every span of the person is found, also where a photo other than the query's is shown.
    for name, spans in wanted.items():
        for a, b in spans:
            assert any(matches(r, {name: [(a, b)]}) for r in results), (name, a, b, results)
    # Never the other person alone: a result in a span that shows only the other person would match it exactly.
    only_other = {n: [s for s in spans if s not in wanted.get(n, [])] for n, spans in unwanted.items()}
    assert not any(matches(r, only_other) for r in results)
    assert not any(Path(str(r["path"])).name == "nobody.mp4" for r in results)


def test_two_people_two_identities(archive: tuple[dict[str, FaceVideo], Path]) -> None:
    people = cli_json("people", "--index", archive[1])
    assert isinstance(people, list) and len(people) == 2
    assert sorted(p["tracks"] for p in people) == [2, 4]  # Biden twice in pair.mp4; Obama twice in each video
    assert all(p["name"] is None and p["crop_segment"] is not None for p in people)
    info = cli_json("info", "--index", archive[1])
    assert isinstance(info, dict) and info["faces"] == {"tracks": 6, "people": 2}


def person_in(index: Path, file_name: str, start: float) -> int:
    shown = cli_json("show", next(p for p in index.parent.parent.rglob(file_name) if p.is_file()), "--index", index)
    assert isinstance(shown, dict)
    return next(f["person_id"] for f in shown["faces"] if abs(f["start"] - start) < 1.0)


def test_a_name_carries_to_text_queries_and_person_filters(
    archive: tuple[dict[str, FaceVideo], Path], index: Path
) -> None:
    videos = archive[0]
    obama = person_in(archive[1], "obama.mp4", 0.0)
    cli("people", "name", str(obama), "Barack Obama", "--index", index)
    out = cli_json("query", "Barack Obama at the podium", "--explain", "--index", index, "--top-k", "20")
    assert isinstance(out, dict)
    by_people = [r for r in out["results"] if "people" in r["channels"]]
    assert len(by_people) == 4 and all(matches(r, truth(videos, "obama")) for r in by_people)
    # A surname alone, and --person by name: the same person.
    surname = cli_json("query", "obama", "--channel", "people", "--index", index)
    assert isinstance(surname, dict) and len(surname["results"]) == 4
    moments = cli_json("query", "--person", "barack obama", "--index", index)
    assert isinstance(moments, dict) and all(r["text"] == "Barack Obama" for r in moments["results"])
    assert len(moments["results"]) == 4
    # The listing shows the name; an unknown name is a one-line error naming who is there.
    assert "Barack Obama" in cli("people", "--index", index)
    failed = cli("query", "--person", "Joe Biden", "--index", index, code=2)
    assert "no person 'Joe Biden'" in failed and "Barack Obama" in failed


def test_forget_removes_every_trace(archive: tuple[dict[str, FaceVideo], Path], index: Path) -> None:
    biden = person_in(archive[1], "pair.mp4", 4.0)
    catalog = index / "catalog.sqlite"
    with sqlite3.connect(catalog) as conn:
        crops = [bytes(r[0]) for r in conn.execute("SELECT crop FROM face_tracks WHERE person_id = ?", (biden,))]
        segments = [r[0] for r in conn.execute("SELECT segment_id FROM face_tracks WHERE person_id = ?", (biden,))]
    assert len(crops) == 2
    before = b"".join(p.read_bytes() for p in index.glob("catalog.sqlite*"))
    assert all(crop[-300:-2] in before for crop in crops)  # entropy-coded data: unique to each crop
    out = cli_json("people", "forget", str(biden), "--index", index)
    assert out == {"id": biden, "tracks": 2, "files": 1}
    with sqlite3.connect(catalog) as conn:
        marks = ",".join("?" * len(segments))
        assert conn.execute(f"SELECT COUNT(*) FROM segments WHERE id IN ({marks})", segments).fetchone()[0] == 0
        assert (
            conn.execute(f"SELECT COUNT(*) FROM space_vectors WHERE segment_id IN ({marks})", segments).fetchone()[0]
            == 0
        )
        assert conn.execute("SELECT COUNT(*) FROM face_tracks").fetchone()[0] == 4
        assert conn.execute("SELECT COUNT(*) FROM people WHERE id = ?", (biden,)).fetchone()[0] == 0
    # Not even in the database's free pages or its write-ahead log.
    raw = b"".join(p.read_bytes() for p in index.glob("catalog.sqlite*"))
    assert not any(crop[-300:-2] in raw for crop in crops)
    assert face_query(index, photo("biden2.jpg")) == []
    assert [p["id"] for p in cli_json("people", "--index", index)] != [biden]
    cli("people", "forget", str(biden), "--index", index, code=2)


def test_still_image_album(tmp_path: Path) -> None:
    album = tmp_path / "album"
    album.mkdir()
    for name in ("obama.jpg", "biden2.jpg"):
        shutil.copy(photo(name), album / name)
    group = Image.new("RGB", (640, 360), (90, 100, 112))
    group.paste(Image.open(photo("obama2.jpg")).convert("RGB").resize((170, 326)), (20, 20))
    group.paste(Image.open(photo("biden.jpg")).convert("RGB").crop((0, 0, 970, 1100)).resize((300, 340)), (300, 10))
    group.save(album / "group.jpg")
    index = tmp_path / "index"
    cli("index", album, "--index", index, *INDEX_ARGS)
    people = cli_json("people", "--index", index)
    assert isinstance(people, list) and sorted(p["tracks"] for p in people) == [2, 2]
    results = face_query(index, photo("obama2.jpg"))
    assert sorted(Path(str(r["path"])).name for r in results) == ["group.jpg", "obama.jpg"]
    assert all(r["start"] is None for r in results)
    # The group photo as the query: its largest face (Biden's, by default) or its second (Obama's).
    largest = face_query(index, album / "group.jpg")
    assert sorted(Path(str(r["path"])).name for r in largest) == ["biden2.jpg", "group.jpg"]
    second = face_query(index, album / "group.jpg", "--face-index", "2")
    assert sorted(Path(str(r["path"])).name for r in second) == ["group.jpg", "obama.jpg"]


def test_query_and_people_errors(archive: tuple[dict[str, FaceVideo], Path], tmp_path: Path) -> None:
    index = archive[1]
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    assert "no face found" in cli("query", "--face", blank, "--index", index, code=2)
    assert "has 1 face(s)" in cli("query", "--face", photo("obama.jpg"), "--face-index", "3", "--index", index, code=2)
    assert "--face-index N needs --face" in cli("query", "x", "--face-index", "1", "--index", index, code=2)
    assert "only one of" in cli("query", "x", "--face", blank, "--index", index, code=2)
    assert "no person '99'" in cli("people", "name", "99", "Someone", "--index", index, code=2)
    assert "itself" in cli("people", "merge", "1", "1", "--index", index, code=2)
    assert "cannot be empty" in cli("people", "name", "1", "  ", "--index", index, code=2)
    assert "no index" in cli("people", "--index", tmp_path / "none", code=2)


def test_http_people_routes(archive: tuple[dict[str, FaceVideo], Path], index: Path) -> None:
    from fastapi.testclient import TestClient

    from mmsearch.server.app import ServerConfig, create_app

    videos = archive[0]
    obama = person_in(archive[1], "obama.mp4", 0.0)
    with TestClient(create_app(ServerConfig(index)), base_url="http://127.0.0.1") as client:
        people = client.get("/api/people").json()
        assert sorted(p["tracks"] for p in people) == [2, 4] and all(p["crop_url"] for p in people)
        crop = client.get(f"/api/people/{obama}/crop")
        assert crop.status_code == 200 and crop.content[:2] == b"\xff\xd8"
        named = client.patch(f"/api/people/{obama}", json={"name": "Barack Obama"})
        assert named.status_code == 200 and named.json()["name"] == "Barack Obama"
        assert client.get("/api/people/barack%20obama").json()["id"] == obama
        moments = client.get("/api/search", params={"person": "Barack Obama", "top_k": 10}).json()["results"]
        assert len(moments) == 4 and all(matches(r, truth(videos, "obama")) for r in moments)
        assert all(r["media_url"] == f"/media/{r['file_id']}" for r in moments)
        with photo("obama2.jpg").open("rb") as f:
            found = client.post("/api/search/face", files={"image": ("o.jpg", f, "image/jpeg")}).json()["results"]
        assert found and all(matches(r, truth(videos, "obama")) for r in found)
        text = client.get("/api/search", params={"q": "Barack Obama", "channel": "people"}).json()["results"]
        assert len(text) == 4
        other = next(p["id"] for p in people if p["id"] != obama)
        assert client.get("/api/people/42").status_code == 404
        assert client.patch(f"/api/people/{other}", json={"name": " "}).status_code == 422
        assert client.post(f"/api/people/{obama}/merge", json={"other": str(obama)}).status_code == 422
        gone = client.delete(f"/api/people/{other}")
        assert gone.status_code == 200 and gone.json()["tracks"] == 2
        assert [p["id"] for p in client.get("/api/people").json()] == [obama]
        assert client.delete(f"/api/people/{other}").status_code == 404


def test_page_people_strip_name_in_place_and_find_by_face(
    archive: tuple[dict[str, FaceVideo], Path], index: Path, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = Path("/usr/bin/chromium")
    if not chromium.is_file():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from mmsearch.server.app import ServerConfig, create_app
    from mmsearch.testing.server import serving

    obama = person_in(archive[1], "obama.mp4", 0.0)
    with sync_api.sync_playwright() as p, serving(create_app(ServerConfig(index))) as url:
        browser = p.chromium.launch(executable_path=str(chromium))
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector(".person img")
        assert page.locator(".person").count() == 2
        # Name in place, then click the person: every moment of theirs, from the URL ?person=ID.
        chip = page.locator(".person").nth(obama - 1)
        chip.locator(".rename").click()
        chip.locator("input").fill("Barack Obama")
        chip.locator("input").press("Enter")
        page.wait_for_selector(".person .who:text('Barack Obama')")
        page.click(".person .who:text('Barack Obama')")
        page.wait_for_selector(".card")
        assert f"person={obama}" in page.url and page.locator(".card").count() == 4
        assert page.locator(".card .badge").first.inner_text().lower() == "face"  # CSS upper-cases badges
        page.screenshot(path=str(tmp_path / "people.png"), full_page=True)
        # A photo given to "Find by face…" finds the person it shows.
        page.set_input_files("#face-image", str(photo("biden2.jpg")))
        page.wait_for_function("() => document.querySelector('#status').textContent.includes('for face:')")
        names = page.eval_on_selector_all(".card .name", "els => els.map(e => e.textContent)")
        assert names == ["pair.mp4"], names
        browser.close()
    assert errors == []


def test_a_copy_joins_the_people_there_and_no_faces_adds_none(
    archive: tuple[dict[str, FaceVideo], Path], index: Path, tmp_path: Path
) -> None:
    """A duplicate's face tracks are copied without re-detection (no crops) and join the same people; a file indexed
    with --no-faces adds no face tracks."""
    videos = archive[0]
    copies = tmp_path / "copies"
    copies.mkdir()
    shutil.copy(videos["obama.mp4"].path, copies / "obama-again.mp4")
    cli("index", copies, "--index", index, *INDEX_ARGS)
    people = cli_json("people", "--index", index)
    assert isinstance(people, list) and sorted(p["tracks"] for p in people) == [2, 6]
    assert all(p["crop_segment"] is not None for p in people)
    shutil.copy(videos["pair.mp4"].path, copies / "pair-later.mp4")
    no_faces = [a for a in INDEX_ARGS if a != "--faces"]
    (copies / "pair-later.mp4").write_bytes((copies / "pair-later.mp4").read_bytes() + b"\0")  # new content
    cli("index", copies / "pair-later.mp4", "--index", index, *no_faces, "--no-faces")
    info = cli_json("info", "--index", index)
    assert isinstance(info, dict) and info["faces"] == {"tracks": 8, "people": 2}
