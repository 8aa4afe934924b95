"""Fusion arithmetic (rrf and weighted) against hand-computed values, weights parsing, fused units to moments."""

from __future__ import annotations

import pytest

from mmsearch.errors import UsageError
from mmsearch.search.channels import Candidate
from mmsearch.search.fusion import RRF_K, fuse, parse_weights, to_moments
from mmsearch.types import SegmentHit, SegmentKind


def cand(
    seg: int, score: float, kind: SegmentKind = SegmentKind.SPEECH, start: float = 0.0, end: float = 1.0
) -> Candidate:
    hit = SegmentHit(seg, f"f{seg}.mp4" if kind is not SegmentKind.SPEECH else "talk.mp4", kind, start, end, score)
    key = ("speech", seg) if kind is SegmentKind.SPEECH else ("visual", seg, start, end)
    return Candidate(key, 1, hit)


# speech ranks A(1) B(2) C(3); keyword ranks C(1) A(2); visual ranks V(1).
A, B, C = cand(1, 0.9, start=0, end=2), cand(2, 0.5, start=10, end=12), cand(3, 0.3, start=20, end=22)
LISTS = {
    "speech": [A, B, C],
    "keyword": [cand(3, 7.0, start=20, end=22), cand(1, 2.0, start=0, end=2)],
    "visual": [cand(9, 0.8, SegmentKind.FRAME, 4.0, 6.0)],
}


def test_rrf_matches_hand_computed_scores() -> None:
    fused = {f.candidate.key: f for f in fuse(LISTS, "rrf")}
    assert fused[("speech", 1)].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused[("speech", 3)].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused[("speech", 2)].score == pytest.approx(1 / 62)
    assert fused[("visual", 9, 4.0, 6.0)].score == pytest.approx(1 / 61)
    assert RRF_K == 60
    # A: 1/61 + 1/62 = 0.032522; C: 1/61 + 1/63 = 0.032266; visual 1/61 = 0.016393 beats B's 1/62.
    assert [f.candidate.key for f in fuse(LISTS, "rrf")] == [
        ("speech", 1), ("speech", 3), ("visual", 9, 4.0, 6.0), ("speech", 2)
    ]  # fmt: skip


def test_rrf_weights_scale_each_channel() -> None:
    fused = {f.candidate.key: f for f in fuse(LISTS, "rrf", {"keyword": 2.0})}
    assert fused[("speech", 3)].score == pytest.approx(1 / 63 + 2 / 61)
    assert fused[("speech", 1)].score == pytest.approx(1 / 61 + 2 / 62)


def test_weighted_sum_of_min_max_normalised_scores() -> None:
    fused = {f.candidate.key: f for f in fuse(LISTS, "weighted", {"keyword": 2.0, "visual": 0.5})}
    # speech min-max over (0.9, 0.5, 0.3): A=1, B=(0.5-0.3)/0.6=1/3, C=0; keyword over (7, 2): C=1, A=0.
    assert fused[("speech", 1)].score == pytest.approx(1.0 + 2.0 * 0.0)
    assert fused[("speech", 2)].score == pytest.approx(1 / 3)
    assert fused[("speech", 3)].score == pytest.approx(0.0 + 2.0 * 1.0)
    # A one-element list normalises to 1.
    assert fused[("visual", 9, 4.0, 6.0)].score == pytest.approx(0.5)


def test_explain_records_rank_and_raw_score_per_channel() -> None:
    fused = {f.candidate.key: f for f in fuse(LISTS, "rrf")}
    channels = fused[("speech", 3)].channels
    assert {n: (c.rank, c.score) for n, c in channels.items()} == {"speech": (3, 0.3), "keyword": (1, 7.0)}


def test_single_channel_keeps_raw_scores_and_order() -> None:
    fused = fuse({"speech": [A, B, C], "keyword": []}, "rrf")
    assert [(f.candidate.key, f.score) for f in fused] == [
        (("speech", 1), 0.9),
        (("speech", 2), 0.5),
        (("speech", 3), 0.3),
    ]


def test_rrf_ties_go_to_the_higher_raw_score() -> None:
    low = cand(5, 0.2, SegmentKind.FRAME, 0.0, 1.0)
    fused = fuse({"visual": [low], "speech": [A]}, "rrf")
    assert fused[0].score == fused[1].score and fused[0].candidate.key == ("speech", 1)


def test_unknown_fusion_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--fusion"):
        fuse(LISTS, "borda")


def test_parse_weights() -> None:
    assert parse_weights(["keyword=2", "visual=0.5", "keyword=3"]) == (("keyword", 3.0), ("visual", 0.5))
    for bad in ("keyword", "smell=2", "keyword=x", "keyword=-1", "=2", "speech=inf"):
        with pytest.raises(UsageError):
            parse_weights([bad])


def test_touching_units_of_one_file_merge_whatever_their_kind() -> None:
    first = cand(1, 0.9, start=0.0, end=2.0)
    second = cand(2, 0.88, start=2.0, end=4.0)
    far = cand(3, 0.2, start=30.0, end=32.0)
    shot_a = cand(7, 0.7, SegmentKind.FRAME, 4.0, 6.0)
    shot_b = Candidate(("visual", 7, 6.0, 8.0), 1, SegmentHit(8, "f7.mp4", SegmentKind.FRAME, 6.0, 8.0, 0.69))
    moments = to_moments(fuse({"speech": [first, second, far], "visual": [shot_a, shot_b]}, "weighted"))
    spans = [(m.path, m.kind.value, m.start, m.end) for m in moments]
    # weighted: first 1.0, shot_a 1.0, second 0.97, shot_b 0; far 0 (ties: higher raw score first).
    assert spans == [
        ("talk.mp4", "speech", 0.0, 4.0),
        ("f7.mp4", "frame", 4.0, 8.0),
        ("talk.mp4", "speech", 30.0, 32.0),
    ]
    assert moments[0].channels["speech"].rank == 1 and moments[0].text is None
