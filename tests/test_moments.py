from __future__ import annotations

from mmsearch.search.moments import merge_hits
from mmsearch.types import SegmentHit, SegmentKind

F, S, IMG = SegmentKind.FRAME, SegmentKind.SPEECH, SegmentKind.IMAGE


def hit(
    i: int,
    path: str,
    start: float | None,
    score: float,
    kind: SegmentKind = F,
    text: str | None = None,
    end: float | None = None,
) -> SegmentHit:
    if end is None and start is not None:
        end = start + 1.0
    return SegmentHit(i, path, kind, start, end, score, text, file_id=ord(path[0]))


def test_touching_strong_frames_merge_and_weak_ones_stay_apart() -> None:
    hits = [
        hit(1, "a", 3, 0.97),
        hit(2, "a", 4, 0.96),
        hit(3, "a", 5, 0.95),
        hit(4, "a", 0, 0.2),
        hit(5, "a", 1, 0.21),
        hit(6, "a", 2, 0.2),
    ]
    moments = merge_hits(hits)
    assert [(m.start, m.end) for m in moments] == [(3, 6), (0, 3)]
    assert moments[0].score == 0.97 and len(moments[0].hits) == 3


def test_gaps_split_moments_and_files_never_mix() -> None:
    moments = merge_hits([hit(1, "a", 0, 0.5), hit(2, "a", 5, 0.5), hit(3, "b", 1, 0.5)])
    assert sorted((m.path, m.start) for m in moments) == [("a", 0), ("a", 5), ("b", 1)]
    assert sorted((m.path, m.file_id) for m in moments) == [("a", ord("a")), ("a", ord("a")), ("b", ord("b"))]


def test_speech_text_is_joined_in_time_order_and_images_have_no_time() -> None:
    moments = merge_hits(
        [
            hit(1, "v", 2.0, 0.8, S, "world", end=4.0),
            hit(2, "v", 0.0, 0.8, S, "hello", end=2.0),
            hit(3, "p.png", None, 0.9, IMG),
        ]
    )
    assert moments[0].path == "p.png" and moments[0].start is None and moments[0].end is None
    assert (moments[1].start, moments[1].end, moments[1].text) == (0.0, 4.0, "hello world")
    assert moments[1].to_json() == {
        "path": "v",
        "file_id": ord("v"),
        "kind": "speech",
        "start": 0.0,
        "end": 4.0,
        "score": 0.8,
        "text": "hello world",
        "evidence": [  # each merged unit with its own time (issue 24)
            {"kind": "speech", "start": 0.0, "end": 2.0, "text": "hello", "channel": None, "score": 0.8},
            {"kind": "speech", "start": 2.0, "end": 4.0, "text": "world", "channel": None, "score": 0.8},
        ],
    }


def test_ranking_is_by_best_hit() -> None:
    moments = merge_hits([hit(1, "a", 0, 0.3), hit(2, "b", 0, 0.9), hit(3, "c", 0, 0.6)])
    assert [m.path for m in moments] == ["b", "c", "a"]


def test_a_moment_as_json_always_has_a_finite_score() -> None:
    """Item 7 of issue 23: whatever fusion produced, what is printed is a JSON number (no Infinity, no NaN)."""
    import json

    from mmsearch.types import ChannelScore, Moment, SegmentKind

    for raw, shown in (
        (float("inf"), 1.7976931348623157e308),
        (float("-inf"), -1.7976931348623157e308),
        (float("nan"), 0.0),
        (0.5, 0.5),
    ):
        moment = Moment("a.mp4", SegmentKind.FRAME, 0.0, 1.0, raw, None, channels={"visual": ChannelScore(1, raw)})
        data = moment.to_json()
        assert data["score"] == shown and json.loads(json.dumps(data, allow_nan=False))["score"] == shown
        assert ChannelScore(1, raw).to_json()["score"] == shown
