"""Measures for fully judged sets (through ir_measures) and for known-item moment retrieval.

Fully judged collections (every returned shot has a judgment, or unjudged means not relevant) are scored with
ir_measures, which wraps trec_eval, so AP / nDCG@10 / R@k agree with the published tools. sample_eval.pl's
inferred measures (see `xinfap`) are for stratified samples only.

Known-item moment retrieval (one true moment per query, e.g. TRECVID KIS or a "find the moment where ..."
test): a returned moment is correct when it is in the same video and its temporal IoU with the truth is >=
0.5.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmsearch.errors import BadInput, UsageError
from mmsearch.trecvid._textio import TextSource, data_lines, source_lines, source_name

DEFAULT_MEASURES: tuple[str, ...] = ("AP", "nDCG@10", "R@1", "R@5", "R@10")
DEFAULT_IOU = 0.5

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class MeasureResult:
    per_topic: dict[str, dict[str, float]]
    means: dict[str, float]


@dataclass(frozen=True)
class Moment:
    video: str
    start: float
    end: float


@dataclass(frozen=True)
class MomentResult:
    # "R@k": share of queries with a correct moment in the top k.
    recall: dict[str, float]
    # Median rank of the first correct moment; inf when more than half the queries have none.
    median_rank: float
    # Per query, rank of the first correct moment (None: not found).
    first_correct: dict[str, int | None]


def standard_measures(qrels: Qrels, run: Run, measures: Sequence[str] = DEFAULT_MEASURES) -> MeasureResult:
    """AP, nDCG@10, R@k, ... per topic, and averaged over topics in both qrels and run (as trec_eval)."""
    ir_measures = _ir_measures()
    try:
        parsed = [ir_measures.parse_measure(name) for name in measures]
    except (ValueError, NameError, SyntaxError) as e:
        raise UsageError(f"unknown measure in {list(measures)}: {e}") from e
    qrels_plain = {t: dict(docs) for t, docs in qrels.items()}
    run_plain = {t: {d: float(s) for d, s in docs.items()} for t, docs in run.items()}
    per_topic: dict[str, dict[str, float]] = {}
    for metric in ir_measures.iter_calc(parsed, qrels_plain, run_plain):
        per_topic.setdefault(metric.query_id, {})[str(metric.measure)] = float(metric.value)
    aggregate = ir_measures.calc_aggregate(parsed, qrels_plain, run_plain)
    means = {str(measure): float(value) for measure, value in aggregate.items()}
    return MeasureResult(
        per_topic=per_topic, means={name: means[str(m)] for name, m in zip(measures, parsed, strict=True)}
    )


def load_qrels(source: TextSource) -> dict[str, dict[str, int]]:
    """trec_eval qrels (`topic iter doc rel`) or sample_eval qrels (`topic iter doc stratum rel`).

    Unsampled shots (-1) of a sample_eval file are dropped: for full-judgment measures they are unknown,
    not wrong.
    """
    qrels: dict[str, dict[str, int]] = {}
    name = source_name(source)
    for number, fields in data_lines(source_lines(source, "qrels file")):
        if len(fields) not in (4, 5):
            raise BadInput(f"{name}:{number}: expected 4 or 5 fields, got {len(fields)}")
        try:
            rel = int(fields[-1])
        except ValueError:
            raise BadInput(f"{name}:{number}: judgment is not an integer: {fields[-1]!r}") from None
        if rel >= 0:
            qrels.setdefault(fields[0], {})[fields[2]] = rel
    return qrels


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two [start, end] intervals in seconds."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        # Two instants: the same instant matches fully, any other not at all.
        return 1.0 if a == b else 0.0
    return inter / union


def is_correct(predicted: Moment, truth: Moment, iou: float = DEFAULT_IOU) -> bool:
    return (
        predicted.video == truth.video
        and temporal_iou((predicted.start, predicted.end), (truth.start, truth.end)) >= iou
    )


def moment_recall(
    rankings: Mapping[str, Sequence[Moment]],
    truths: Mapping[str, Moment],
    ks: Sequence[int] = (1, 5, 10),
    iou: float = DEFAULT_IOU,
) -> MomentResult:
    """R@k and MedR of the first correct moment over the queries of `truths` (unranked: not found)."""
    if not truths:
        raise UsageError("moment recall needs at least one query with a true moment")
    if any(k < 1 for k in ks):
        raise UsageError(f"recall cut-offs must be >= 1, got {list(ks)}")
    first: dict[str, int | None] = {}
    for query, truth in truths.items():
        ranks = (r for r, m in enumerate(rankings.get(query, ()), start=1) if is_correct(m, truth, iou))
        first[query] = next(ranks, None)
    n = len(truths)
    recall = {f"R@{k}": sum(1 for r in first.values() if r is not None and r <= k) / n for k in ks}
    medr = statistics.median(math.inf if r is None else float(r) for r in first.values())
    return MomentResult(recall=recall, median_rank=medr, first_correct=first)


def _ir_measures() -> Any:
    try:
        import ir_measures
    except ImportError as e:
        raise UsageError("standard measures need the ir_measures package", hint="pip install ir_measures") from e
    return ir_measures
