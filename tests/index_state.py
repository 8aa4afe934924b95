"""What an index holds, in a form two indexes can be compared by: per file path its hash and segment counts."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mmsearch.index.catalog import Catalog
from mmsearch.index.facade import Index
from mmsearch.testing.media import Shot, make_image, make_video

# Tiny media for fault and property tests: a frame is 64x48 so decoding and hashing cost next to nothing.
TINY = (64, 48)
IMAGE_SOURCES = ("red", "blue", "testsrc", "smptebars")
VIDEO_SHOTS = (("green", 1), ("testsrc", 2), ("mandelbrot", 1))


@dataclass(frozen=True)
class IndexState:
    # raw path -> (sha256, frame segments, speech segments, image segments)
    files: dict[bytes, tuple[str, int, int, int]]
    vectors: int
    vector_ids: tuple[int, ...]

    @property
    def segment_count(self) -> int:
        return sum(f + s + i for _, f, s, i in self.files.values())


def index_state(index_dir: Path) -> IndexState:
    index = Index.read(index_dir, device="cpu")
    catalog, store = index.catalog, index.store
    try:
        files = {}
        for rec in catalog.files():
            kinds = Counter(s.kind.value for s in catalog.segments_of(rec.id))
            files[rec.raw_path] = (rec.sha256, kinds["frame"], kinds["speech"], kinds["image"])
        ids = tuple(sorted(store.ids().tolist()))
    finally:
        catalog.close()
    return IndexState(files, store.ntotal, ids)


def catalog_segment_ids(index_dir: Path) -> list[int]:
    catalog = Catalog.open(index_dir / "catalog.sqlite", readonly=True)
    try:
        return catalog.segment_ids()
    finally:
        catalog.close()


def make_pool(root: Path) -> list[Path]:
    """Distinct tiny media contents (images and 1-2 s silent videos) to copy around."""
    root.mkdir(parents=True, exist_ok=True)
    pool = [make_image(root / f"img-{s}.png", s, size=TINY) for s in IMAGE_SOURCES]
    for source, seconds in VIDEO_SHOTS:
        truth = make_video(root / f"vid-{source}.mp4", [Shot(source, seconds)], size=TINY, fps=10, audio=False)
        pool.append(truth.path)
    return pool


def place(pool_file: Path, dest: Path) -> Path:
    """Put a pool file's content at `dest` under the pool file's extension (content decides the kind anyway)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pool_file, dest)
    return dest
