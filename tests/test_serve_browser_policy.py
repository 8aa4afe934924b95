"""Issue 23, item 1 in a real browser (Playwright + Debian's chromium): an indexed PNG named page.html with a
script appended never runs that script on the server's origin, the page and /docs work under the strict
Content-Security-Policy with no violation, and no other site can frame the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_index import make_small_index

from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.testing.media import make_image
from mmsearch.testing.server import serving

CHROMIUM = Path("/usr/bin/chromium")
# Sets the title and reads the API, as an attacker's page on the server's origin would.
SCRIPT = b"<html><body><script>document.title='PWNED';fetch('/api/search?q=stolen')</script></body></html>"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=str(CHROMIUM))
        except sync_api.Error as e:
            pytest.skip(f"chromium cannot run here: {str(e).splitlines()[0]}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("browser-policy")
    small = make_small_index(root)
    png = make_image(root / "evil.png", "red")
    (small.media / "page.html").write_bytes(png.read_bytes() + SCRIPT)
    assert run_ingest(IngestOptions(paths=(small.media,), index_dir=small.index, model="test:hash", asr=None))
    with serving(create_app(ServerConfig(small.index))) as url:
        yield url


def _file_id(base_url: str, name: str) -> int:
    results = httpx.get(f"{base_url}/api/search", params={"q": "red", "fusion": "rrf", "top_k": 50}).json()
    return next(r["file_id"] for r in results["results"] if r["path"].endswith(name))


def _watched(browser: Any) -> tuple[Any, list[str], list[str]]:
    """A new page with the console's CSP reports and the URLs it requested collected."""
    page = browser.new_page()
    violations: list[str] = []
    requested: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda e: violations.append(str(e)))
    page.on("request", lambda r: requested.append(r.url))
    return page, violations, requested


def test_a_png_named_page_html_with_a_script_never_runs_it(browser: Any, base_url: str) -> None:
    page, _, requested = _watched(browser)
    media = f"{base_url}/media/{_file_id(base_url, 'page.html')}"
    response = page.goto(media)
    assert response is not None and response.headers["content-type"] == "image/png"
    page.wait_for_timeout(500)
    assert page.title() != "PWNED"
    assert not any("stolen" in url for url in requested), requested
    # The browser shows it as what it is: an image document (one <img>), not the HTML the name promises.
    assert page.evaluate("document.contentType") == "image/png"
    page.close()


def test_the_page_searches_and_plays_under_the_policy(browser: Any, base_url: str) -> None:
    page, violations, _ = _watched(browser)
    page.goto(base_url + "/?q=red&fusion=rrf")
    page.wait_for_selector(".card")
    page.locator(".card").first.click()
    page.wait_for_selector("#stage video, #stage img")
    page.wait_for_timeout(300)
    thumbs = page.eval_on_selector_all(".card .thumb", "ts => ts.map(t => getComputedStyle(t).backgroundImage)")
    assert any("/thumbnail/" in t for t in thumbs), thumbs  # thumbnails styled from script: allowed by the CSP
    assert violations == []
    page.close()


def test_docs_render_under_the_policy(browser: Any, base_url: str) -> None:
    page, violations, _ = _watched(browser)
    page.goto(base_url + "/docs")
    page.locator(".opblock-summary-path", has_text="/api/search").first.wait_for(state="visible")
    assert violations == []
    page.close()


def test_another_site_cannot_frame_the_page(browser: Any, base_url: str) -> None:
    page, _, _ = _watched(browser)
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    page.set_content(f'<iframe id="f" src="{base_url}/"></iframe>')
    page.wait_for_timeout(1500)
    frame = page.frame_locator("#f")
    assert frame.locator("#q").count() == 0  # the search box never rendered inside the frame
    page.close()
