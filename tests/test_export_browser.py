"""The page from search to edit, in Debian's chromium: the player's timeline and N/P, moment links, more results,
the clip list (kept across reloads, exported), and the phone layout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from media import GoldenMedia
from test_serve_browser import _DROP, base_url, browser  # noqa: F401 - fixtures

from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.testing.media import Shot, Utterance, make_video
from mmsearch.testing.server import serving

pytestmark = pytest.mark.slow
otio = pytest.importorskip("opentimelineio")
SEEK_TOLERANCE_S = 0.6  # a seek lands on a frame, and playback moves on a little before we look
# The keyword channel alone: its matches are the spoken sentences, apart in time (visual hits of neighbouring
# frames touch, and touching hits of a file merge into one moment).
QUERY = {"q": "red fox", "channel": "keyword", "fusion": "rrf", "top_k": "4"}


@pytest.fixture(scope="module")
def fox_url(tmp_path_factory: pytest.TempPathFactory, media_tools: None, asr_model_dir: Path) -> Iterator[str]:
    """A 15 s video where the red fox is said three times (at about 1, 6 and 11 s): three matches in one file."""
    root = tmp_path_factory.mktemp("fox")
    (root / "media").mkdir()
    said = [
        Utterance("the red fox jumped", 1.0),
        Utterance("a red fox at night", 6.0),
        Utterance("the red fox ran", 11.0),
    ]
    make_video(root / "media" / "fox.mp4", [Shot("smptebars", 5), Shot("mandelbrot", 5), Shot("testsrc", 5)], said)
    index = root / "index"
    summary = run_ingest(
        IngestOptions(
            paths=(root / "media",), index_dir=index, model="test:hash", asr=AsrOptions(model=str(asr_model_dir))
        )
    )
    assert summary.failed == []
    with serving(create_app(ServerConfig(index))) as url:
        yield url


def _matches(url: str, file_id: int) -> list[float]:
    """The starts the player's timeline should mark: the query's top 100 moments in that file."""
    found = httpx.get(url + "/api/search", params={**QUERY, "top_k": "100"}).json()["results"]
    return sorted({r["start"] for r in found if r["file_id"] == file_id and r["start"] is not None})


def _open_first_video(page: Any, url: str) -> dict[str, Any]:
    """Click the first card of a video with two or more matches of the query (its timeline has a next match)."""
    shown = httpx.get(url + "/api/search", params=QUERY).json()["results"]
    candidates = [
        (i, r) for i, r in enumerate(shown) if r["media_kind"] == "video" and len(_matches(url, r["file_id"])) >= 2
    ]
    assert candidates, [(Path(r["path"]).name, r["kind"], r["start"]) for r in shown]
    index, first = candidates[0]
    page.click(f'.card[data-index="{index}"]')
    page.wait_for_function("() => { const v = document.querySelector('#stage video'); return v && v.readyState >= 1 }")
    return first


def _time(page: Any) -> float:
    return float(page.evaluate("document.querySelector('#stage video').currentTime"))


def test_timeline_markers_next_previous_and_a_moment_link(browser: Any, fox_url: str, tmp_path: Path) -> None:  # noqa: F811
    url = fox_url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/?" + str(httpx.QueryParams(QUERY)))
    page.wait_for_selector(".card")
    moment = _open_first_video(page, url)
    starts = _matches(url, moment["file_id"])
    page.wait_for_function(f"() => document.querySelectorAll('#track .marker').length === {len(starts)}")
    marked = page.eval_on_selector_all("#track .marker", "ms => ms.map(m => Number(m.dataset.start))")
    assert marked == starts
    duration = page.evaluate("document.querySelector('#stage video').duration")
    lefts = page.eval_on_selector_all("#track .marker", "ms => ms.map(m => parseFloat(m.style.left))")
    assert all(abs(left - 100 * s / duration) < 0.5 for left, s in zip(lefts, starts, strict=True)), (lefts, starts)
    page.screenshot(path=str(tmp_path / "timeline.png"))

    # N and P walk the matches in time order, from the open one.
    page.select_option("#at-end", "stop")
    at = starts.index(moment["start"])
    for step, key in ((1, "n"), (1, "n"), (-1, "p")):
        if not 0 <= at + step < len(starts):
            continue
        at += step
        page.keyboard.press(key)
        page.wait_for_function(
            f"() => Math.abs(document.querySelector('#stage video').currentTime - {starts[at]}) < {SEEK_TOLERANCE_S}"
        )
        assert page.inner_text("#match-pos") == f"match {at + 1} of {len(starts)}"

    # "At the end: stop": the match plays to its end and pauses there.
    found = httpx.get(url + "/api/search", params={**QUERY, "top_k": "100"}).json()["results"]
    end = next(r["end"] for r in found if r["file_id"] == moment["file_id"] and r["start"] == starts[at])
    page.wait_for_function("() => document.querySelector('#stage video').paused", timeout=30_000)
    assert end - 0.1 <= _time(page) <= end + SEEK_TOLERANCE_S, (_time(page), end)

    # A link to the moment opens the page with the player there.
    page.click("#copy-link")
    link = page.input_value("#link-out")
    assert "open=" in link and "t=" in link and "q=red+fox" in link and "channel=keyword" in link
    other = browser.new_page(viewport={"width": 1280, "height": 900})
    other.goto(link)
    other.wait_for_selector("#player[open]")
    other.wait_for_function(
        "() => { const v = document.querySelector('#stage video'); return v && v.readyState >= 1 && v.currentTime > 0 }"
    )
    assert abs(_time(other) - starts[at]) < SEEK_TOLERANCE_S + 1.0
    assert errors == []


def test_more_results_adds_results(browser: Any, base_url: str) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base_url + "/?q=red+fox&fusion=rrf&top_k=2")
    page.wait_for_function("() => document.querySelectorAll('.card').length === 2")
    total = len(
        httpx.get(base_url + "/api/search", params={"q": "red fox", "fusion": "rrf", "top_k": 12}).json()["results"]
    )
    assert total > 2
    page.click("#more-results")
    page.wait_for_function(f"() => document.querySelectorAll('.card').length === {min(total, 12)}")
    assert "top_k=12" in page.url
    page.check("#group")  # one row per file, its matches on a mini timeline
    page.wait_for_selector(".file-row .mini-track .marker")
    assert page.locator(".file-row .marker").count() == min(total, 12)


def test_clip_list_survives_a_reload_and_exports_the_selection(browser: Any, base_url: str, tmp_path: Path) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.goto(base_url + "/?q=red+fox&fusion=rrf&top_k=4")
    page.wait_for_selector(".card")
    page.check('.card[data-index="0"] .select')
    page.check('.card[data-index="2"] .select')
    page.focus('.card[data-index="1"]')
    page.keyboard.press("s")  # S on a focused card
    page.wait_for_function("() => document.querySelectorAll('#clips > li[data-index]').length === 3")
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('#clips > li[data-index]').length === 3")
    assert page.is_checked('.card[data-index="2"] .select')
    # Adjust: the first clip starts a second later (when it can), the last moves to the top.
    page.locator('#clips > li[data-index="0"] button[aria-label="End 1 s later"]').click()
    page.focus('#clips > li[data-index="2"]')
    page.keyboard.press("Alt+ArrowUp")
    page.keyboard.press("Alt+ArrowUp")
    before = [c["key"] for c in page.evaluate("MMClips.list()")]
    page.drag_and_drop('#clips > li[data-index="0"]', '#clips > li[data-index="2"]')  # the first goes last
    chosen = page.evaluate("MMClips.list()")
    assert [c["key"] for c in chosen] == [before[1], before[2], before[0]]
    assert [c["key"] for c in chosen] != [] and len(chosen) == 3
    page.select_option("#export-format", "otio")
    with page.expect_download() as download:
        page.click("#export")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".otio"
    # In timeline order: sound-only moments are on A1, below the gaps they leave on V1.
    timeline = otio.adapters.read_from_file(str(saved))
    clips = sorted(timeline.find_clips(), key=lambda c: c.range_in_parent().start_time.to_seconds())
    assert len(clips) == len(chosen)
    got = [otio.url_utils.filepath_from_url(c.media_reference.target_url) for c in clips]
    assert got == [c["path"] for c in chosen]  # the list's order
    for clip, c in zip(clips, chosen, strict=True):
        assert otio.url_utils.filepath_from_url(clip.media_reference.target_url) == c["path"]
        if c["in"] is not None:
            rate = clip.source_range.start_time.rate
            assert abs(clip.source_range.start_time.to_seconds() - c["in"]) <= 1 / rate + 1e-6
            length = clip.media_reference.available_range.end_time_exclusive().to_seconds()  # out stops there
            assert abs(clip.source_range.end_time_exclusive().to_seconds() - min(c["out"], length)) <= 1 / rate + 1e-6
    (tmp_path / "chosen.json").write_text(json.dumps(chosen))
    page.screenshot(path=str(tmp_path / "cliplist.png"))


def test_phone_layout_clips_no_labels(browser: Any, fox_url: str) -> None:  # noqa: F811
    url = fox_url
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(url + "/?" + str(httpx.QueryParams(QUERY)))
    page.wait_for_selector(".card")
    page.check('.card[data-index="0"] .select')
    _open_first_video(page, url)
    page.wait_for_selector("#track .marker")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    clipped = page.evaluate(_CLIPPED)
    assert clipped == [], clipped
    page.keyboard.press("Escape")
    clipped = page.evaluate(_CLIPPED)
    assert clipped == [] and page.evaluate("document.documentElement.scrollWidth") <= 390, clipped


# Visible buttons, labels and links whose text is wider than their box (cut off), or that stick out of the screen.
_CLIPPED = """() => [...document.querySelectorAll('button, label, a, .name, .clip-span, #match-pos')]
  .filter(e => e.offsetParent !== null && e.getClientRects().length)
  .filter(e => !e.classList.contains('name') || e.closest('.file-row'))
  .filter(e => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > window.innerWidth + 1)
  .map(e => (e.id || e.className || e.tagName) + ': ' + e.innerText.slice(0, 30))"""


def test_an_image_search_keeps_a_url(browser: Any, base_url: str, golden: GoldenMedia) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base_url + "/?fusion=rrf")
    page.wait_for_selector("#channels input", state="attached")
    page.evaluate(_DROP, {"bytes": list(golden.still.read_bytes()), "name": golden.still.name})
    page.wait_for_function("() => location.search.includes('image=')")
    first = page.locator('.card[data-index="0"] .name').inner_text()
    assert page.is_visible("#query-image")
    page.reload()  # the URL alone brings the same search back, and the image beside it
    page.wait_for_selector('.card[data-index="0"]')
    assert page.locator('.card[data-index="0"] .name').inner_text() == first == golden.still.name
    page.wait_for_function("() => document.querySelector('#query-image').naturalWidth > 0")
