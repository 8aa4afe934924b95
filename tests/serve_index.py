"""A small index of generated media for the server tests: a three-shot video and a still image, no speech."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.testing.media import Shot, make_image, make_video


@dataclass(frozen=True)
class SmallIndex:
    index: Path
    media: Path
    video: Path  # red 0-2 s | testsrc 2-4 s | blue 4-6 s
    still: Path  # rgbtestsrc, 320x240


def make_small_index(root: Path) -> SmallIndex:
    media = root / "media"
    media.mkdir(parents=True)
    video = make_video(media / "shots.mp4", [Shot("red", 2), Shot("testsrc", 2), Shot("blue", 2)], audio=False).path
    still = make_image(media / "still.png", "rgbtestsrc")
    index = root / "index"
    summary = run_ingest(IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=None))
    assert summary.failed == [] and summary.files == 2
    return SmallIndex(index, media, video, still)


def add_media(index: Path, *paths: Path) -> None:
    summary = run_ingest(IngestOptions(paths=paths, index_dir=index, model="test:hash", asr=None))
    assert summary.failed == []
