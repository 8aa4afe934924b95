"""Fully judged measures through ir_measures, and known-item moment recall / MedR."""

from __future__ import annotations

import math

import pytest
from pytest import approx

from mmsearch.errors import BadInput, UsageError
from mmsearch.trecvid.measures import Moment, is_correct, load_qrels, moment_recall, standard_measures, temporal_iou


def test_standard_measures_by_hand() -> None:
    qrels = {"q1": {"a": 1, "c": 1, "z": 0}, "q2": {"x": 1}}
    run = {"q1": {"a": 0.9, "b": 0.8, "c": 0.7}, "q2": {"y": 0.9, "x": 0.5}}
    result = standard_measures(qrels, run)
    # q1: relevant at ranks 1 and 3 → AP (1 + 2/3) / 2; q2: relevant at rank 2 → AP 1/2.
    assert result.per_topic["q1"]["AP"] == approx(5 / 6)
    assert result.per_topic["q2"]["AP"] == approx(0.5)
    assert result.per_topic["q1"]["nDCG@10"] == approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert result.per_topic["q2"]["nDCG@10"] == approx(1 / math.log2(3))
    assert result.per_topic["q1"]["R@1"] == 0.5
    assert result.per_topic["q2"]["R@1"] == 0.0
    assert result.means == approx(
        {
            "AP": (5 / 6 + 0.5) / 2,
            "nDCG@10": ((1.5 / (1 + 1 / math.log2(3))) + 1 / math.log2(3)) / 2,
            "R@1": 0.25,
            "R@5": 1.0,
            "R@10": 1.0,
        }
    )


def test_unknown_measure() -> None:
    with pytest.raises(UsageError, match="unknown measure"):
        standard_measures({"q": {"a": 1}}, {"q": {"a": 1.0}}, measures=("NotAMeasure@3",))


def test_load_qrels_both_layouts() -> None:
    lines = ["1 0 a 1", "1 0 b 0", "2 0 c 2 1", "2 0 d 2 -1", "# comment"]
    assert load_qrels(lines) == {"1": {"a": 1, "b": 0}, "2": {"c": 1}}
    with pytest.raises(BadInput, match="expected 4 or 5 fields"):
        load_qrels(["1 0 a"])
    with pytest.raises(BadInput, match="not an integer"):
        load_qrels(["1 0 a x"])


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0.0, 10.0), (5.0, 15.0), 5 / 15),
        ((0.0, 10.0), (0.0, 10.0), 1.0),
        ((0.0, 4.0), (6.0, 10.0), 0.0),
        ((0.0, 4.0), (4.0, 10.0), 0.0),
        ((2.0, 4.0), (0.0, 10.0), 0.2),
        ((3.0, 3.0), (3.0, 3.0), 1.0),
        ((3.0, 3.0), (4.0, 4.0), 0.0),
    ],
)
def test_temporal_iou(a: tuple[float, float], b: tuple[float, float], iou: float) -> None:
    assert temporal_iou(a, b) == approx(iou)
    assert temporal_iou(b, a) == approx(iou)


def test_correct_needs_same_video_and_half_overlap() -> None:
    truth = Moment("v1", 10.0, 20.0)
    assert is_correct(Moment("v1", 10.0, 20.0), truth)
    assert is_correct(Moment("v1", 15.0, 20.0), truth)  # IoU exactly 0.5 counts
    assert not is_correct(Moment("v1", 16.0, 20.0), truth)  # IoU 0.4
    assert not is_correct(Moment("v2", 10.0, 20.0), truth)


def test_moment_recall_and_median_rank() -> None:
    truths = {
        "q1": Moment("v1", 10.0, 20.0),
        "q2": Moment("v2", 0.0, 4.0),
        "q3": Moment("v3", 5.0, 6.0),
        "q4": Moment("v4", 0.0, 1.0),
    }
    wrong = Moment("v9", 0.0, 1.0)
    rankings = {
        "q1": [Moment("v1", 11.0, 19.0), wrong],  # first correct at rank 1
        "q2": [wrong, wrong, Moment("v2", 0.5, 4.0)],  # rank 3
        "q3": [wrong] * 6 + [Moment("v3", 5.0, 6.0)],  # rank 7
        # q4 is not ranked at all: never found
    }
    result = moment_recall(rankings, truths)
    assert result.first_correct == {"q1": 1, "q2": 3, "q3": 7, "q4": None}
    assert result.recall == {"R@1": 0.25, "R@5": 0.5, "R@10": 0.75}
    assert result.median_rank == 5.0  # median of 1, 3, 7, inf


def test_median_rank_is_infinite_when_most_are_missed() -> None:
    truths = {"a": Moment("v", 0.0, 1.0), "b": Moment("v", 5.0, 6.0), "c": Moment("v", 9.0, 10.0)}
    result = moment_recall({"a": [Moment("v", 0.0, 1.0)]}, truths, ks=(1,))
    assert result.recall == {"R@1": approx(1 / 3)}
    assert math.isinf(result.median_rank)


def test_moment_recall_rejects_empty_truths_and_bad_k() -> None:
    with pytest.raises(UsageError):
        moment_recall({}, {})
    with pytest.raises(UsageError):
        moment_recall({}, {"a": Moment("v", 0.0, 1.0)}, ks=(0,))
