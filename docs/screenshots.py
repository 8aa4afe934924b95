"""The README's screenshots of the page: `python docs/screenshots.py URL` against a running `mmsearch serve`.

The ones in docs/ were taken on an index of shared/media-real (friday.mp4, the Tears of Steel clip, the street
footage and jfk.flac) built with `--model test:hash` (untrained: the visual matches are arbitrary; the speech and
keyword matches are real Whisper tiny.en transcripts).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).parent
QUERY = "/?q=somebody+stolen+the+crown&fusion=rrf&top_k=10"


def main(url: str) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + QUERY)
        page.wait_for_selector(".card")
        speech = page.locator(".card", has_text="crown").first
        speech.click()
        page.wait_for_selector("#track .marker")
        page.wait_for_selector("#transcript .line")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(HERE / "timeline.png"))
        page.keyboard.press("s")
        page.keyboard.press("Escape")
        for index in (1, 3):
            page.check(f'.card[data-index="{index}"] .select')
        page.goto(url + "/?q=ask+not+what+your+country+can+do&fusion=rrf&top_k=6")
        page.wait_for_selector(".card")
        page.check('.card[data-index="0"] .select')
        page.locator('#clips > li[data-index="0"] button[aria-label="Start 1 s earlier"]').click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(HERE / "cliplist.png"))
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"))
