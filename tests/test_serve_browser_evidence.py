"""The page shows each piece of a merged moment (issue 24): on-screen text and speech apart, each with its time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_serve_browser import browser  # noqa: F401 - the real chromium fixture

from mmsearch.index.facade import Index
from mmsearch.models.registry import load_embedder
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.testing.media import Shot, make_video
from mmsearch.testing.server import serving
from mmsearch.types import MediaFile, MediaKind, Segment, SegmentKind

pytestmark = pytest.mark.slow

SAID = "the train to the coast leaves at noon"
SHOWN = "PLATFORM SEVEN NOON"


@pytest.fixture
def base_url(tmp_path: Path, media_tools: None) -> Iterator[str]:
    """A real video whose speech (1-3 s) and on-screen text (1.5-3.5 s) both hold the word 'noon'."""
    (tmp_path / "media").mkdir()
    video = tmp_path / "media" / "news.mp4"
    make_video(video, [Shot("blue", 4)], audio=False)
    stat = video.stat()
    media = MediaFile(video, MediaKind.VIDEO, stat.st_size, stat.st_mtime_ns, False, 4.0, 320, 240)
    embedder = load_embedder("test:hash", "cpu")
    segments = [
        Segment(SegmentKind.FRAME, 0.0, 1.0),
        Segment(SegmentKind.SPEECH, 1.0, 3.0, SAID),
        Segment(SegmentKind.OCR, 1.5, 3.5, SHOWN),
        Segment(SegmentKind.SUBTITLE, 3.5, 4.0, "All aboard"),
    ]
    vectors = embedder.embed_texts(["blue", SAID])  # CLIP kinds only: the frame and the speech
    with Index.write(tmp_path / "index", "test:hash", untrained=True, device="cpu") as index:
        index.open_vectors(lambda: embedder.dim)
        index.add_file(media, "sha-news", segments, vectors)
    with serving(create_app(ServerConfig(tmp_path / "index"))) as url:
        yield url


def test_a_merged_moment_shows_screen_text_and_speech_each_with_its_time(browser: Any, base_url: str) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/?q=noon&channel=keyword")
    page.wait_for_selector(".card .piece")
    pieces = page.locator(".card").first.locator(".piece")
    assert pieces.count() == 2
    shown = [pieces.nth(i).inner_text() for i in range(2)]
    assert any(t.startswith("on-screen text 00:01") and SHOWN in t for t in shown), shown
    assert any(t.startswith("speech 00:01–00:03") and SAID in t for t in shown), shown
    marked = page.locator(".card").first.locator("mark").all_inner_texts()
    assert {m.lower() for m in marked} == {"noon"}  # the matched word, in both pieces
    page.locator(".card").first.click()
    page.wait_for_selector("#player-text .piece")
    assert page.locator("#player-text .piece").count() == 2
    assert errors == []
    # The side panel lists what is said, subtitled and shown, in time order; each kind has its marker colour.
    lines = httpx.get(f"{base_url}/api/transcript/1").json()
    assert [(line["kind"], line["start"]) for line in lines] == [("speech", 1.0), ("ocr", 1.5), ("subtitle", 3.5)]
    assert page.locator(".legend .m-subtitle").count() == 1
