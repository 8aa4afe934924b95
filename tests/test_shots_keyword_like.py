"""Units without media: shot grouping and long-shot windows, BM25 keyword index, --like parsing, exclusion."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mmsearch.errors import BadInput, UsageError
from mmsearch.search.channels import Exclusion
from mmsearch.search.keyword import BM25_PREFIX, KeywordIndex, keyword_index, tokenize
from mmsearch.search.like import LikeSpec, resolve_like
from mmsearch.search.shots import LONG_SHOT_SECONDS, MAX_WINDOW_SECONDS, WINDOW_PAD_SECONDS, shot_units
from mmsearch.types import SegmentHit, SegmentKind


def frame(i: int, t: float, score: float) -> tuple[int, SegmentHit]:
    return 1, SegmentHit(i, "v.mp4", SegmentKind.FRAME, t, t + 1.0, score, file_id=1)


def test_frame_hit_is_reported_as_its_shot() -> None:
    units = shot_units([frame(1, 3.0, 0.9), frame(2, 2.0, 0.5)], {1: [(0.0, 2.0), (2.0, 4.48), (4.48, 6.0)]})
    assert [(u.hit.start, u.hit.end, u.hit.score, u.hit.segment_id, u.hit.file_id) for u in units] == [
        (2.0, 4.48, 0.9, 1, 1)
    ]


def test_hit_in_long_shot_is_a_window_around_matching_frames() -> None:
    shots = {1: [(0.0, 2.0), (2.0, 30.0)]}
    scores = {t: 0.2 for t in range(2, 30)} | {14: 0.95, 15: 0.9, 16: 0.3}
    units = shot_units([frame(t, float(t), s) for t, s in scores.items()], shots)
    best = units[0].hit
    assert (best.start, best.end, best.score) == (14.0, 16.0, 0.95)  # frames 14 and 15; 16 scores too low
    # Every window is inside the shot, no two overlap, none is as long as a long shot.
    spans = sorted((u.hit.start or 0.0, u.hit.end or 0.0) for u in units)
    assert all(2.0 <= a < b <= 30.0 and b - a < LONG_SHOT_SECONDS for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))


def test_window_is_padded_where_no_other_window_is() -> None:
    units = shot_units([frame(14, 14.0, 0.95), frame(15, 15.0, 0.9), frame(25, 25.0, 0.4)], {1: [(2.0, 30.0)]})
    assert [(u.hit.start, u.hit.end) for u in units] == [
        (14.0 - WINDOW_PAD_SECONDS, 16.0 + WINDOW_PAD_SECONDS),
        (25.0 - WINDOW_PAD_SECONDS, 26.0 + WINDOW_PAD_SECONDS),
    ]
    assert MAX_WINDOW_SECONDS + 2 * WINDOW_PAD_SECONDS < LONG_SHOT_SECONDS


def test_without_shots_frames_fall_back_to_touching_runs() -> None:
    units = shot_units([frame(1, 3.0, 0.9), frame(2, 4.0, 0.89), frame(3, 9.0, 0.1)], {})
    assert [(u.hit.start, u.hit.end) for u in units] == [(3.0, 5.0), (9.0, 10.0)]


def test_without_shots_frames_that_touch_none_are_units_as_merging_would_make_them() -> None:
    apart = [frame(1, 9.0, 0.3), frame(2, 3.0, 0.9), frame(3, 5.5, 0.9)]  # 1.5 s and 2.5 s gaps: nothing to merge
    units = shot_units(apart, {})
    assert [u.hit for u in units] == [apart[1][1], apart[2][1], apart[0][1]]  # best first; ties by start
    assert [u.hit for u in units] == [u.hit for u in shot_units([*apart, frame(4, 30.0, 0.1)], {})][:3]


def test_images_are_units_of_their_own() -> None:
    image = SegmentHit(5, "a.png", SegmentKind.IMAGE, None, None, 0.7)
    assert [u.hit for u in shot_units([(2, image)], {})] == [image]


def test_tokenize_stems_and_drops_stop_words() -> None:
    assert tokenize(["The foxes were jumping over the fences"]) == [["fox", "jump", "fenc"]]


def test_keyword_index_ranks_by_bm25_and_skips_non_matches() -> None:
    index = KeywordIndex.build([10, 11, 12], ["a red fox jumped", "the fox slept", "a blue whale sang"])
    hits = index.search("red foxes", k=10)
    assert [i for i, _ in hits] == [10, 11] and hits[0][1] > hits[1][1] > 0
    assert index.search("the of and", k=5) == [] and index.search("zebra", k=5) == []
    assert KeywordIndex.build([], []).search("fox", k=3) == []


def test_keyword_index_is_cached_per_generation(tmp_path: Path) -> None:
    class FakeCatalog:
        calls = 0

        def speech_texts(self) -> tuple[list[int], list[str], list[str | None]]:
            FakeCatalog.calls += 1
            return [4, 5], ["red fox", "blue whale"], [None, "en"]

    catalog = FakeCatalog()
    first = keyword_index(catalog, tmp_path, 3)  # type: ignore[arg-type]
    again = keyword_index(catalog, tmp_path, 3)  # type: ignore[arg-type]
    assert FakeCatalog.calls == 1 and first.search("whale", 2) == again.search("whale", 2) == [
        (5, pytest.approx(first.search("whale", 2)[0][1]))
    ]
    keyword_index(catalog, tmp_path, 4)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.glob(f"{BM25_PREFIX}*")) == [f"{BM25_PREFIX}00000004"]


class IndexedPaths:
    """The one catalog method `resolve_like` reads: files by path key (the files need not exist on disk)."""

    def __init__(self, *paths: Path) -> None:
        self.ids = {os.fsencode(p): i for i, p in enumerate(paths, start=1)}

    def file_by_key(self, key: bytes) -> SimpleNamespace | None:
        return SimpleNamespace(id=self.ids[key]) if key in self.ids else None


def test_resolve_like(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    catalog: Any = IndexedPaths(tmp_path / "talk.mp4", tmp_path / "dir/talk.mp4", tmp_path / "a@b.mp4")
    assert resolve_like(catalog, "talk.mp4@2.5-7") == resolve_like(catalog, "talk.mp4@2.5-7.0") == LikeSpec(1, 2.5, 7.0)
    spec = resolve_like(catalog, "dir/talk.mp4@2.5-7")
    assert (spec.file_id, spec.start, spec.end, spec.label) == (2, 2.5, 7.0, "like:dir/talk.mp4@2.5-7")
    assert resolve_like(catalog, "talk.mp4") == LikeSpec(1)
    # Indexed paths holding an '@' are never split there, although none of these files is on disk.
    assert resolve_like(catalog, "a@b.mp4") == LikeSpec(3)
    assert resolve_like(catalog, "a@b.mp4@1-2").label == "like:a@b.mp4@1-2"
    assert resolve_like(catalog, str(tmp_path / "a@b.mp4@1-2")) == LikeSpec(3, 1.0, 2.0)
    for bad in ("talk.mp4@7-2", "talk.mp4@abc", "talk.mp4@-1-3", "talk.mp4@5-5", "", "a@b.mp4@2-1"):
        with pytest.raises(UsageError):
            resolve_like(catalog, bad)
    Path("x@y.mp4").write_bytes(b"")  # on disk but not indexed: "not in the index", not a range error
    for stranger in ("other.mp4", "other.mp4@1-2", "x@y.mp4"):
        with pytest.raises(BadInput, match="not in the index"):
            resolve_like(catalog, stranger)


def test_like_spec_checks_its_range() -> None:
    LikeSpec(1, 0.0, 2.0).validate()
    for start, end in ((3.0, 1.0), (2.0, 2.0), (None, 2.0), (1.0, None)):
        with pytest.raises(UsageError):
            LikeSpec(1, start, end).validate()
    assert LikeSpec(4, 1.5, 3.0).label == "like:file 4@1.5-3"


def test_exclusion_covers_overlapping_spans_of_the_same_file() -> None:
    ex = Exclusion(1, 2.0, 4.0)
    assert ex.covers(1, 3.0, 5.0) and ex.covers(1, 0.0, 2.5) and ex.covers(1, None, None)
    assert not ex.covers(1, 4.0, 6.0) and not ex.covers(2, 3.0, 4.0)
    assert Exclusion(1).covers(1, 100.0, 101.0)
