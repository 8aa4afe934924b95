"""Frame dedupe: repeated frames inside a shot are not embedded, yet every sampled time stays covered exactly once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsearch.ingest.dedupe import Dedupe, FrameDeduper, changed, thumbnail
from mmsearch.types import FrameBatch, MediaFile, MediaKind, Segment, SegmentKind

INTERVAL = 1.0


def _solid(value: int, shape: tuple[int, int] = (72, 128)) -> np.ndarray:
    return np.full((*shape, 3), value, np.uint8)


def _run(frames: list[np.ndarray], shots: list[tuple[float, float]], batch: int) -> tuple[list[Segment], list[float]]:
    """Feed `frames` (one per second) in batches of `batch`; return the kept segments and all sampled times."""
    deduper = FrameDeduper(shots)
    kept: list[Segment] = []
    times = [float(i) * INTERVAL for i in range(len(frames))]
    for lo in range(0, len(frames), batch):
        segs = [Segment(SegmentKind.FRAME, t, t + INTERVAL) for t in times[lo : lo + batch]]
        out_segs, out_frames = deduper.keep(segs, frames[lo : lo + batch], last=lo + batch >= len(frames))
        assert len(out_segs) == len(out_frames)
        kept.extend(out_segs)
    return kept, times


def _assert_covered_once(kept: list[Segment], times: list[float]) -> None:
    for t in times:
        owners = [s for s in kept if s.start is not None and s.end is not None and s.start <= t < s.end]
        assert len(owners) == 1, f"time {t} covered by {owners}"
    assert kept == sorted(kept, key=lambda s: s.start or 0.0)


@pytest.mark.parametrize("batch", [1, 3, 32])
def test_static_shots_cost_one_embedding_each_and_stay_covered(batch: int) -> None:
    frames = [_solid(30)] * 10 + [_solid(200)] * 10 + [_solid(200)] * 5  # the third shot looks like the second
    shots = [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    kept, times = _run(frames, shots, batch)
    assert [(s.start, s.end) for s in kept] == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]  # never across a cut
    _assert_covered_once(kept, times)


@pytest.mark.parametrize("batch", [1, 4, 32])
def test_frames_that_change_every_second_are_all_kept(batch: int) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (72, 128, 3), dtype=np.uint8) for _ in range(12)]
    kept, times = _run(frames, [(0.0, 12.0)], batch)
    assert [s.start for s in kept] == times
    _assert_covered_once(kept, times)


def test_comparison_is_with_the_last_kept_frame_so_slow_drift_is_caught() -> None:
    frames = [_solid(100 + 4 * i) for i in range(12)]  # +4/255 a second: each step is below the threshold
    kept, times = _run(frames, [], 5)
    assert 1 < len(kept) < len(frames)
    _assert_covered_once(kept, times)


def test_a_small_object_is_a_change() -> None:
    base = _solid(50, (360, 640))
    with_object = base.copy()
    with_object[100:112, 300:312] = 255  # 12×12 pixels appear in one thumbnail cell
    assert changed(thumbnail(base), thumbnail(with_object))
    noisy = np.clip(base.astype(np.int16) + np.random.default_rng(0).integers(-6, 7, base.shape), 0, 255).astype(
        np.uint8
    )
    assert not changed(thumbnail(base), thumbnail(noisy))  # codec-like noise is not


def test_dedupe_tracks_files_and_forgets_them_at_their_last_batch(tmp_path: Path) -> None:
    media = MediaFile(tmp_path / "a.mp4", MediaKind.VIDEO, 1, 1, duration=4.0)
    dedupe = Dedupe()
    frames = np.stack([_solid(10)] * 4)
    segs = [Segment(SegmentKind.FRAME, float(t), float(t) + 1.0) for t in range(4)]
    first = dedupe.keep(FrameBatch(media, frames[:2], np.arange(2.0), 1.0), segs[:2], [])
    assert first == ([], [])  # the kept frame waits: its segment may still grow
    out_segs, out_frames = dedupe.keep(FrameBatch(media, frames[2:], np.arange(2.0, 4.0), 1.0, last=True), segs[2:], [])
    assert [(s.start, s.end) for s in out_segs] == [(0.0, 4.0)] and len(out_frames) == 1
    assert (dedupe.sampled, dedupe.embedded) == (4, 1)
    # an empty last batch still releases the held frame
    dedupe.keep(FrameBatch(media, frames[:1], np.zeros(1), 1.0), segs[:1], [])
    held = dedupe.keep(FrameBatch(media, frames[:0], np.zeros(0), 1.0, last=True), [], [])
    assert [(s.start, s.end) for s in held[0]] == [(0.0, 1.0)]


@pytest.mark.slow
def test_exact_frame_queries_land_in_the_right_shot_and_time_with_dedupe(tmp_path: Path, media_tools: None) -> None:
    from mmsearch.index.catalog import Catalog
    from mmsearch.ingest.runner import IngestOptions, run_ingest
    from mmsearch.search.searcher import Query, Searcher
    from mmsearch.testing.media import Shot, extract_frame, make_video

    (tmp_path / "media").mkdir()
    video = make_video(
        tmp_path / "media" / "v.mp4",
        [Shot("red", 6), Shot("testsrc", 4), Shot("blue", 6)],
        size=(320, 240),
        audio=False,
    ).path
    index_dir = tmp_path / "index"
    summary = run_ingest(IngestOptions(paths=(video,), index_dir=index_dir, model="test:hash", asr=None))
    assert summary.failed == []
    catalog = Catalog.open(index_dir / "catalog.sqlite", readonly=True)
    try:
        frames = [r for r in catalog.segments_of(1) if r.kind is SegmentKind.FRAME]
    finally:
        catalog.close()
    # 16 sampled seconds: red and blue static (one frame each), testsrc changes every second (four frames)
    assert len(frames) == 6
    _assert_covered_once([Segment(r.kind, r.start, r.end) for r in frames], [float(t) for t in range(16)])
    searcher = Searcher.open(index_dir)
    try:
        for t, (lo, hi) in ((4.0, (0.0, 6.0)), (7.0, (6.0, 10.0)), (14.0, (10.0, 16.0))):
            query = extract_frame(video, t, tmp_path / f"q{t}.png")
            top = searcher.search_vector(searcher.embedder.embed_images([_load(query)])[0], 1)[0]
            assert top.start is not None and top.end is not None
            assert lo <= top.start <= t < top.end <= hi, (t, top)
            moment = searcher.search(Query(image=query, modality="video", top_k=1))[0]
            assert moment.path == str(video) and moment.start is not None and moment.end is not None
            assert moment.start <= t < moment.end and lo - 0.1 <= moment.start and moment.end <= hi + 0.1
    finally:
        searcher.close()


def _load(path: Path) -> np.ndarray:
    from mmsearch.ingest.decode import load_image

    return load_image(path)
