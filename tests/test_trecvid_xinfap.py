"""xinfAP port (sample_eval.pl) on hand-built cases whose expected values are derived step by step below.

E and S are the script's smoothing constants: a stratum's precision above rank k is estimated as
(relevant so far + E) / (sampled so far + S).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import ir_measures
import pytest
from pytest import approx

from mmsearch.errors import BadInput, UsageError
from mmsearch.trecvid.xinfap import RECALL_KEYS, evaluate

E, S = 0.00001, 0.00003
DATA = Path(__file__).parent / "data" / "trecvid"


def run_lines(topic: str, scored: list[tuple[str, float]]) -> list[str]:
    return [f"{topic} Q0 {shot} {rank} {score} test" for rank, (shot, score) in enumerate(scored, start=1)]


def test_single_fully_judged_stratum() -> None:
    qrels = ["1 0 a 1 1", "1 0 b 1 0", "1 0 c 1 1", "1 0 d 1 0"]
    run = run_lines("1", [("a", 0.9), ("b", 0.8), ("c", 0.7), ("x", 0.6), ("d", 0.5)])
    t = evaluate(qrels, run).per_topic["1"]
    # rank 1 (a, relevant): nothing pooled above, precision 1.
    # rank 3 (c, relevant): a and b pooled above, one relevant: 1/3 + 2/3 * (1+E)/(2+S).
    prec_c = 1 / 3 + (2 / 3) * (1 + E) / (2 + S)
    assert t["infAP"] == approx((1 + prec_c) / 2, rel=1e-12)
    assert round(t["infAP"], 4) == 0.8333  # plain AP is (1 + 2/3) / 2
    # DCG 1/log2(2) + 1/log2(4) = 1.5; ideal for 2 relevant: 1 + 1/log2(3).
    assert t["infNDCG"] == approx(1.5 / (1 + 1 / math.log2(3)), rel=1e-12)
    # x is unjudged, so 4 pooled shots in the top 5, 2 of them relevant.
    assert t["inum_rel_ret"] == approx(4 * (2 + E) / (4 + S), rel=1e-12)
    assert t["iP5"] == approx(4 * (2 + E) / (4 + S) / 5, rel=1e-12)
    assert t["iP10"] == approx(4 * (2 + E) / (4 + S) / 10, rel=1e-12)
    assert t["iP1000"] == approx(4 * (2 + E) / (4 + S) / 1000, rel=1e-12)
    assert (t["inum_rel"], t["num_ret"]) == (2.0, 5.0)


QRELS_TWO_STRATA = [
    # stratum 1: fully judged; stratum 2: half of its four shots sampled (-1 = pooled, not sampled)
    "2 0 s1a 1 1",
    "2 0 s1b 1 0",
    "2 0 s2a 2 1",
    "2 0 s2b 2 0",
    "2 0 s2c 2 -1",
    "2 0 s2d 2 -1",
]
RUN_TWO_STRATA = run_lines("2", [("s1a", 0.9), ("s2c", 0.8), ("s2a", 0.7), ("zz", 0.6), ("s1b", 0.5), ("s2b", 0.4)])


def test_strata_sampled_at_different_rates() -> None:
    t = evaluate(QRELS_TWO_STRATA, RUN_TWO_STRATA).per_topic["2"]
    # Inferred relevant: stratum 1 gives 1 * 2/2 = 1, stratum 2 gives 1 * 4/2 = 2.
    assert t["inum_rel"] == 3.0
    # s2a at rank 3 has s1a (stratum 1: 1 rel of 1 sampled) and s2c (stratum 2: 0 of 0 sampled) above it.
    prec_s2a = 1 / 3 + (2 / 3) * (0.5 * (1 + E) / (1 + S) + 0.5 * E / S)
    # AP = P(rel from stratum 1) * 1 + P(rel from stratum 2) * prec_s2a = 1/3 * 1 + 2/3 * prec_s2a.
    assert t["infAP"] == approx(1 / 3 + (2 / 3) * prec_s2a, rel=1e-12)
    assert round(t["infAP"], 4) == 0.8518
    # DCG per stratum: 2/5 * 1/2 (s1a gain 1 over 2 sampled) + 3/5 * 0.5/2 (s2a gain 1/log2(4)) = 0.35,
    # times 5 pooled shots; ideal DCG for 3 inferred relevant: 1 + 1/log2(3) + 1/log2(4).
    assert t["infNDCG"] == approx(5 * 0.35 / (1 + 1 / math.log2(3) + 0.5), rel=1e-12)
    # Top 5: stratum 1 fully seen (2 shots, 1 rel of 2 sampled), stratum 2 has 2 pooled (1 rel of 1 sampled).
    assert t["iP5"] == approx((2 * (1 + E) / (2 + S) + 2 * (1 + E) / (1 + S)) / 5, rel=1e-12)
    assert t["inum_rel_ret"] == approx(5 * (1 + E) / (2 + S), rel=1e-12)


def test_interpolated_precision_walk() -> None:
    t = evaluate(QRELS_TWO_STRATA, RUN_TWO_STRATA).per_topic["2"]
    # About 2.5 of 3 inferred relevant are retrieved: recall 0.9 and 1.0 (2.7, 3.0) are never reached.
    assert t["iprec@rec0.90"] == 0.0
    assert t["iprec@rec1.00"] == 0.0
    # Every reachable level gets the best precision at or below rank 3: 3 * (1+E)/(1+S) relevant in 3 shots.
    best = 3 * (1 + E) / (1 + S) / 3
    for key in RECALL_KEYS[:9]:
        assert t[key] == approx(best, rel=1e-12)


def test_ties_break_on_descending_shot_id_and_cut_at_max_results() -> None:
    qrels = ["3 0 t1 1 1", "3 0 t2 1 1", "3 0 t3 1 0", "3 0 t4 1 1", "3 0 t5 1 0"]
    run = run_lines("3", [("t1", 0.5), ("t2", 0.5), ("t3", 0.5), ("t4", 0.9), ("t5", 0.1), ("t5", 0.05)])
    result = evaluate(qrels, run, max_results=3)
    t = result.per_topic["3"]
    # Order t4 (0.9), then the 0.5 ties as t3, t2, t1; the cut at 3 keeps t4, t3, t2.
    # 3 inferred relevant is not more than max_results, so no AP rescaling.
    prec_t2 = 1 / 3 + (2 / 3) * (1 + E) / (2 + S)
    assert t["infAP"] == approx((1 + prec_t2) / 3, rel=1e-12)
    assert t["iP3"] == approx(3 * (2 + E) / (3 + S) / 3, rel=1e-12)
    assert t["iP5"] == approx(3 * (2 + E) / (3 + S) / 5, rel=1e-12)
    # Per topic the script counts run lines (duplicates too); the total counts ranked shots.
    assert t["num_ret"] == 6.0
    assert result.totals["num_ret"] == 3.0
    assert result.precision_ranks == (5, 10, 15, 20, 30, 100, 200, 500, 3)


def test_ap_rescaled_when_inferred_relevant_exceed_max_results() -> None:
    qrels = ["4 0 r1 1 1", "4 0 r2 1 1", "4 0 r3 1 1"]
    run = run_lines("4", [("r1", 0.9), ("r2", 0.8), ("r3", 0.7)])
    t = evaluate(qrels, run, max_results=2).per_topic["4"]
    prec_r2 = 1 / 2 + (1 / 2) * (1 + E) / (1 + S)
    # (1 + prec_r2) / 3 relevant, then times 3 inferred relevant / 2 max results.
    assert t["infAP"] == approx((1 + prec_r2) / 3 * 3 / 2, rel=1e-12)
    # The ideal DCG stops at max_results too, so two relevant in two slots is perfect.
    assert t["infNDCG"] == 1.0


def test_topics_missing_from_run_or_qrels() -> None:
    qrels = ["1 0 a 1 1", "1 0 b 1 0", "8 0 p 1 1", "8 0 q 1 1"]
    run = run_lines("1", [("a", 0.9), ("b", 0.1)]) + run_lines("9", [("a", 0.9)])
    result = evaluate(qrels, run)
    assert list(result.per_topic) == ["1"]
    assert result.unjudged_topics == ("9",)
    assert result.missing_topics == ("8",)
    assert result.means["infAP"] == 1.0
    # The script's total inferred relevant covers every judged topic, retrieved or not.
    assert result.totals["inum_rel"] == 3.0
    assert result.totals["inum_rel_ret"] == approx(2 * (1 + E) / (2 + S), rel=1e-12)


def test_means_average_evaluated_topics() -> None:
    result = evaluate(QRELS_TWO_STRATA + ["1 0 a 1 1"], RUN_TWO_STRATA + run_lines("1", [("a", 1.0)]))
    expected = (1.0 + result.per_topic["2"]["infAP"]) / 2
    assert list(result.per_topic) == ["1", "2"]
    assert result.means["infAP"] == approx(expected, rel=1e-12)
    assert result.means["iP5"] == approx((result.per_topic["1"]["iP5"] + result.per_topic["2"]["iP5"]) / 2)


def test_topic_with_no_sampled_shot() -> None:
    qrels = ["5 0 u1 1 -1", "5 0 u2 1 -1"]
    run = run_lines("5", [("u1", 0.9), ("u2", 0.8), ("z", 0.7)])
    t = evaluate(qrels, run).per_topic["5"]
    assert (t["infAP"], t["infNDCG"], t["inum_rel"]) == (0.0, 0.0, 0.0)
    # The smoothing still credits each pooled-but-unsampled shot with E/S (about a third) of a relevant.
    assert t["inum_rel_ret"] == approx(2 * E / S, rel=1e-12)
    assert t["iP5"] == approx(2 * E / S / 5, rel=1e-12)
    # With nothing to recall every level takes the best precision, u1's E/S at rank 1.
    assert [t[k] for k in RECALL_KEYS] == approx([E / S] * 11, rel=1e-12)


def test_run_outside_the_pool_scores_zero() -> None:
    t = evaluate(["6 0 a 1 1"], run_lines("6", [("x", 0.9), ("y", 0.8)])).per_topic["6"]
    assert (t["infAP"], t["infNDCG"], t["inum_rel_ret"], t["iP5"]) == (0.0, 0.0, 0.0, 0.0)
    assert t["inum_rel"] == 1.0


def test_graded_judgments_weight_ndcg() -> None:
    qrels = ["7 0 a 1 2", "7 0 b 1 1", "7 0 c 1 0"]
    t = evaluate(qrels, run_lines("7", [("b", 0.9), ("a", 0.8), ("c", 0.7)])).per_topic["7"]
    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert t["infNDCG"] == approx(dcg / ideal, rel=1e-12)


def test_full_judgments_match_trec_eval_through_ir_measures() -> None:
    rng = random.Random(20)
    qrels_lines: list[str] = []
    run_lines_all: list[str] = []
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for topic in ("11", "12", "13", "14"):
        docs = [f"shot{topic}_{i}" for i in range(40)]
        judged = rng.sample(docs, 25)
        qrels[topic] = {d: rng.choice([0, 0, 1, 2]) for d in judged}
        qrels_lines += [f"{topic} 0 {d} 1 {rel}" for d, rel in qrels[topic].items()]
        run[topic] = {d: round(rng.random(), 2) for d in rng.sample(docs, 30)}  # rounding makes ties
        run_lines_all += [f"{topic} Q0 {d} 0 {s} r" for d, s in run[topic].items()]
    ours = evaluate(qrels_lines, run_lines_all).per_topic
    ap = {
        (m.query_id, str(m.measure)): m.value
        for m in ir_measures.iter_calc([ir_measures.AP(rel=1), ir_measures.nDCG], qrels, run)
    }
    for topic in run:
        # Only the smoothing constants separate the two estimates of AP.
        assert ours[topic]["infAP"] == approx(ap[(topic, "AP")], abs=1e-4)
        assert ours[topic]["infNDCG"] == approx(ap[(topic, "nDCG")], abs=1e-9)


def test_reads_files() -> None:
    # The same two cases as above under V3C-style shot ids (topic 1 single stratum, topic 2 two strata).
    result = evaluate(DATA / "qrels.txt", str(DATA / "run.txt"))
    by_lines = evaluate(QRELS_TWO_STRATA, RUN_TWO_STRATA).per_topic["2"]
    assert result.per_topic["2"] == by_lines
    assert round(result.per_topic["1"]["infAP"], 4) == 0.8333
    assert result.means["infAP"] == approx((result.per_topic["1"]["infAP"] + by_lines["infAP"]) / 2)
    assert round(result.means["infAP"], 4) == 0.8426


@pytest.mark.parametrize(
    ("qrels", "run", "message"),
    [
        (["1 0 a 1"], ["1 Q0 a 1 1 r"], "expected 5 fields"),
        (["1 0 a 1 yes"], ["1 Q0 a 1 1 r"], "judgment is not a number"),
        (["1 0 a 1 1"], ["1 Q0 a 1 r"], "expected 6 fields"),
        (["1 0 a 1 1"], ["1 Q0 a 1 nan r"], "score is NaN"),
        (["1 0 a 1 1"], ["2 Q0 a 1 1 r"], "no topic of run"),
        (["# only a comment"], ["1 Q0 a 1 1 r"], "has no judgments"),
    ],
)
def test_bad_input_is_reported(qrels: list[str], run: list[str], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        evaluate(qrels, run)


def test_missing_file_and_bad_max_results(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="qrels file not found"):
        evaluate(tmp_path / "nope.txt", ["1 Q0 a 1 1 r"])
    with pytest.raises(UsageError, match="at least 1"):
        evaluate(["1 0 a 1 1"], ["1 Q0 a 1 1 r"], max_results=0)


def test_topic_offset_detected_only_when_it_fits_every_topic(tmp_path: Path) -> None:
    qrels = tmp_path / "qrels"
    qrels.write_text("1611 0 a 1 1\n1611 0 b 1 0\n1612 0 c 1 1\n")
    run = tmp_path / "run"
    run.write_text("611 Q0 a 1 2 r\n611 Q0 b 2 1 r\n612 Q0 c 1 1 r\n")
    result = evaluate(qrels, run)
    assert result.topic_offset == 1000
    assert set(result.per_topic) == {"1611", "1612"} and result.means["infAP"] == approx(1.0)
    # One run topic that no shift makes judged: no renumbering, the usual error.
    run.write_text("611 Q0 a 1 2 r\n999 Q0 c 1 1 r\n")
    with pytest.raises(BadInput, match="no topic of run"):
        evaluate(qrels, run)
