"""Inferred AP and NDCG (xinfAP, infNDCG) for TRECVID AVS: a Python port of NIST's `sample_eval.pl`.

What was ported. `sample_eval.pl` implements Yilmaz, Kanoulas & Aslam, "A Simple and Efficient Sampling
Method for Estimating AP and NDCG" (SIGIR 2008), with NIST's changes (change log of 7 Aug 10, 24 Aug 10, 27
Aug 10 and the 5 Sep 12 / "PO 15. August 2012" AP adjustment). The text followed line by line is the TRECVID
AVS copy found in GitHub `geo-awad/testLB`, file `sample_eval.pl` (commit
158f6fd6b2ca9cb1676eaa74f48fda6dab96b1c8; `maxResultSize` 1000 "adjusted ... in TV16 for the ad-hoc task",
precision cut-offs 5,10,15,20,30,100,200,500,maxResultSize). It was checked against
`GeometricMLMechanism/ProbVideoRetrieval` `sample_eval.pl` (commit fce458e7...), identical except that it
reads maxResultSize from the command line and cuts at 10,100,1000,maxResultSize; both are selectable here
through `max_results` and `precision_ranks`.

Arithmetic kept exactly, including its quirks:
- qrels `topic ignored shotId stratum judgment`: judgment > 0 relevant (the value is the NDCG gain), 0
  judged not relevant, -1 in the pool but not sampled. Every line counts towards its stratum's size, even a
  repeated shot.
- run `topic Q0 shotId rank score runId`: the rank column is ignored; shots are ordered by score descending,
  ties by shot id in descending string order; a repeated shot keeps its last score; only the first
  `max_results` count.
- precision estimates use the script's smoothing (+0.00001 / +0.00003), so a stratum with no sampled shot
  above a rank still contributes one third of its pooled shots to the estimated number relevant retrieved.
- AP is multiplied by inferred-number-relevant / max_results when the former exceeds the latter.
- the ideal DCG steps through fractional ranks when the inferred number relevant per grade is fractional, as
  the TV16 script does (the later `-w` TREC copy rounds it; that copy is not the one used by TRECVID).
- means are over topics present in both run and qrels; `inum_rel` sums every qrels topic, `num_ret` the
  ranked shots that were scored (at most max_results per topic) - exactly the script's "all" lines. Per
  topic, `num_ret` is the number of run lines for that topic, as the script prints it.
- interpolated precision at the 11 recall levels follows the script's one-level-per-rank walk.

Deviations, all in input handling or presentation, none in arithmetic:
- files are read line by line and a line with the wrong number of fields, a bad number or NaN is an error
  (`BadInput`) instead of silently misaligning the Perl token stream; blank and `#` lines are skipped.
- no `-G` grade remapping; no topic in common raises `BadInput` where Perl dies dividing by zero.
- per-topic `iprec@recX.XX` values are returned too (the script only sums them into its "all" lines).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from mmsearch.errors import BadInput, UsageError
from mmsearch.trecvid._textio import TextSource, data_lines, source_lines, source_name

# TV16 AVS cut-offs of the script; max_results is appended as the script appends $maxResultSize.
PRECISION_RANKS: tuple[int, ...] = (5, 10, 15, 20, 30, 100, 200, 500)
DEFAULT_MAX_RESULTS = 1000
# The script's smoothing: keeps a stratum's precision estimate finite before any of its shots was sampled.
_EPS_RELEVANT = 0.00001
_EPS_SAMPLED = 0.00003
# Recall levels as the script writes them (strings converted to numbers, ".1" → 0.1).
# Shifts tried between published AVS topic numbers (611-680) and NIST's qrels numbering (1611-1680).
TOPIC_OFFSETS: tuple[int, ...] = (1000, -1000)
_RECALL_LEVELS: tuple[str, ...] = ("0", ".1", ".2", ".3", ".4", ".5", ".6", ".7", ".8", ".9", "1")
RECALL_KEYS: tuple[str, ...] = tuple(f"iprec@rec{i / 10:4.2f}" for i in range(11))


@dataclass(frozen=True)
class EvalResult:
    """Scores per topic and over topics, under the names sample_eval.pl prints."""

    per_topic: dict[str, dict[str, float]]
    # infAP, infNDCG, iprec@recX.XX, iP<k>: averages over the evaluated topics.
    means: dict[str, float]
    # inum_rel_ret, inum_rel, num_ret: sums, as on the script's "all" lines.
    totals: dict[str, float]
    max_results: int
    precision_ranks: tuple[int, ...]
    # In the run but absent from the qrels: skipped, as the script does.
    unjudged_topics: tuple[str, ...] = ()
    # In the qrels but absent from the run: not averaged (they score nothing rather than zero).
    missing_topics: tuple[str, ...] = ()
    # Added to the run's topic numbers to meet the qrels' (see detect_topic_offset); 0 when they matched.
    topic_offset: int = 0

    @property
    def num_topics(self) -> int:
        return len(self.per_topic)


@dataclass
class _TopicPool:
    """The judged pool of one topic, filled line by line from the qrels."""

    judged: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # shot → (stratum, grade, value)
    docs: Counter[str] = field(default_factory=Counter)
    sampled: Counter[str] = field(default_factory=Counter)
    sampled_rel: Counter[str] = field(default_factory=Counter)
    rel_per_grade: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, shot: str, stratum: str, grade: str, value: float) -> None:
        self.judged[shot] = (stratum, grade, value)
        self.docs[stratum] += 1
        if value >= 0:
            self.sampled[stratum] += 1
        if value > 0:
            self.rel_per_grade.setdefault(stratum, Counter())[grade] += 1
            self.sampled_rel[stratum] += 1

    def strata(self) -> list[str]:
        return sorted(self.docs)

    def estimated_num_rel(self) -> float:
        total = 0.0
        for stratum in self.strata():
            if self.sampled[stratum] != 0:
                total += self.sampled_rel[stratum] * self.docs[stratum] / self.sampled[stratum]
        return total

    def estimated_per_grade(self) -> dict[str, float]:
        per_grade: dict[str, float] = {}
        for stratum in self.strata():
            grades = self.rel_per_grade.get(stratum, Counter())
            for grade in sorted(grades):
                estimate = grades[grade] * self.docs[stratum] / self.sampled[stratum]
                per_grade[grade] = per_grade.get(grade, 0.0) + estimate
        return per_grade


@dataclass
class _RankState:
    """Counts per stratum down to the current rank (the script's num_docs, num_sampled, num_relevant, ...)."""

    strata: list[str]
    docs: dict[str, int]
    sampled: dict[str, int]
    relevant: dict[str, int]
    sum_prec: dict[str, float]
    gain: dict[str, float]
    depth: int = 0

    @classmethod
    def start(cls, strata: list[str]) -> _RankState:
        def zeros() -> dict[str, int]:
            return dict.fromkeys(strata, 0)

        return cls(strata, zeros(), zeros(), zeros(), dict.fromkeys(strata, 0.0), dict.fromkeys(strata, 0.0))

    def add_relevant(self, stratum: str, value: float, rank: int) -> None:
        """Expected precision at a relevant shot: itself plus the estimated precision of the pool above."""
        prec_above = 0.0
        for s in self.strata:
            if self.depth != 0:
                prob = self.docs[s] / self.depth
                if prob != 0:
                    prec_above += prob * (self.relevant[s] + _EPS_RELEVANT) / (self.sampled[s] + _EPS_SAMPLED)
        self.sum_prec[stratum] += 1 / rank + (self.depth / rank) * prec_above
        self.relevant[stratum] += 1
        self.gain[stratum] += value / (math.log(rank + 1) / math.log(2))

    def add_pooled(self, stratum: str, sampled: bool) -> None:
        self.depth += 1
        self.docs[stratum] += 1
        if sampled:
            self.sampled[stratum] += 1

    def estimated_relevant(self) -> float:
        total = 0.0
        for s in self.strata:
            total += self.docs[s] * (self.relevant[s] + _EPS_RELEVANT) / (self.sampled[s] + _EPS_SAMPLED)
        return total

    def dcg(self) -> float:
        value = 0.0
        for s in self.strata:
            if self.depth != 0:
                prob = self.docs[s] / self.depth
                if self.sampled[s] != 0:
                    value += prob * self.gain[s] / self.sampled[s]
        return value


def evaluate(
    qrels: TextSource,
    run: TextSource,
    max_results: int = DEFAULT_MAX_RESULTS,
    precision_ranks: tuple[int, ...] = PRECISION_RANKS,
) -> EvalResult:
    """Score a TREC-format run against stratified-sample qrels exactly as sample_eval.pl does."""
    if max_results < 1:
        raise UsageError(f"max results must be at least 1, got {max_results}")
    cutoffs = tuple(dict.fromkeys((*precision_ranks, max_results)))
    pools = _read_qrels(qrels)
    scores, line_counts = _read_run(run)
    offset = 0
    if not set(scores) & set(pools):
        offset = detect_topic_offset(scores, pools)
        scores = {shift_topic(t, offset): v for t, v in scores.items()}
        line_counts = Counter({shift_topic(t, offset): n for t, n in line_counts.items()})
    per_topic: dict[str, dict[str, float]] = {}
    curves: dict[str, list[float]] = {}
    for topic in sorted(scores, key=_numeric_order):
        if topic in pools:
            per_topic[topic], curves[topic] = _evaluate_topic(
                pools[topic], scores[topic], line_counts[topic], max_results, cutoffs
            )
    if not per_topic:
        raise BadInput(
            f"no topic of run {source_name(run)} has judgments in qrels {source_name(qrels)}",
            hint="check that both files use the same topic numbers (leading zeros matter; a shift of 1000 is "
            "detected on its own)",
        )
    return EvalResult(
        per_topic=per_topic,
        means=_means(per_topic, curves, cutoffs),
        totals=_totals(per_topic, pools, scores, max_results),
        max_results=max_results,
        precision_ranks=cutoffs,
        unjudged_topics=tuple(sorted((t for t in scores if t not in pools), key=_numeric_order)),
        missing_topics=tuple(sorted((t for t in pools if t not in scores), key=_numeric_order)),
        topic_offset=offset,
    )


def detect_topic_offset(run_topics: Iterable[str], judged_topics: Iterable[str]) -> int:
    """The shift that makes a run's topic numbers those of the qrels, or 0 when none fits.

    NIST's AVS qrels number topics 1611-1680 while the published topic lists (and so runs made from them)
    say 611-680; sample_eval.pl users prefix a "1" by hand. Only +-1000 is tried, and only when it makes
    every numeric run topic a judged one, so an unrelated run is never silently renumbered.
    """
    numeric = [t for t in run_topics if t.isdigit()]
    judged = set(judged_topics)
    for offset in TOPIC_OFFSETS:
        if numeric and all(shift_topic(t, offset) in judged for t in numeric):
            return offset
    return 0


def shift_topic(topic: str, offset: int) -> str:
    """`topic` + `offset` for numeric topics (no leading zeros kept: NIST's 4-digit numbers have none)."""
    if not offset or not topic.isdigit():
        return topic
    return str(int(topic) + offset)


def _evaluate_topic(
    pool: _TopicPool, scores: dict[str, float], num_lines: int, max_results: int, cutoffs: tuple[int, ...]
) -> tuple[dict[str, float], list[float]]:
    ranked = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)[:max_results]
    state = _RankState.start(pool.strata())
    rel_at_rank: list[float] = []
    precision: dict[int, float] = {}
    for rank, (shot, _score) in enumerate(ranked, start=1):
        judged = pool.judged.get(shot)
        if judged is not None:
            stratum, _grade, value = judged
            if value > 0:
                state.add_relevant(stratum, value, rank)
            state.add_pooled(stratum, sampled=value >= 0)
        rel_at_rank.append(state.estimated_relevant())
        if rank in cutoffs:
            precision[rank] = rel_at_rank[-1] / rank
    num_rel_ret = rel_at_rank[-1]
    num_rels = pool.estimated_num_rel()
    optimal = _optimal_dcg(pool.estimated_per_grade(), max_results)
    scores_out: dict[str, float] = {
        "infAP": _inferred_ap(pool, state, num_rels, max_results),
        "infNDCG": state.depth * state.dcg() / optimal if optimal != 0 else 0.0,
    }
    for cutoff in cutoffs:
        scores_out[f"iP{cutoff}"] = precision.get(cutoff, num_rel_ret / cutoff)
    scores_out.update({"inum_rel_ret": num_rel_ret, "inum_rel": num_rels, "num_ret": float(num_lines)})
    curve = _interpolated_precision(rel_at_rank, num_rels, num_rel_ret)
    scores_out.update(zip(RECALL_KEYS, curve, strict=True))
    return scores_out, curve


def _inferred_ap(pool: _TopicPool, state: _RankState, num_rels: float, max_results: int) -> float:
    """Expected AP: per stratum, mean precision at its sampled relevant shots, weighted by its share."""
    ap = 0.0
    for stratum in state.strata:
        if pool.sampled[stratum] != 0:
            rel_estimate = pool.sampled_rel[stratum] * pool.docs[stratum] / pool.sampled[stratum]
            if num_rels != 0:
                prob = rel_estimate / num_rels
                ap_stratum = 0.0
                if pool.sampled_rel[stratum] != 0:
                    ap_stratum = state.sum_prec[stratum] / pool.sampled_rel[stratum]
                ap += prob * ap_stratum
    # NIST 2012: a run cannot hold more than max_results shots, so AP is rescaled to be reachable.
    if num_rels > max_results:
        ap = ap * num_rels / max_results
    return ap


def _optimal_dcg(per_grade: dict[str, float], max_results: int) -> float:
    """Ideal DCG from the inferred number relevant per grade, highest grade (string order) first."""
    total = 0.0
    start = 0.0
    for grade in sorted(per_grade, reverse=True):
        count = per_grade[grade]
        r = start + 1
        while r <= start + count:
            total += _number(grade, "grade") / (math.log(r + 1) / math.log(2))
            if r >= max_results:
                break
            r += 1
        start += count
    return total


def _interpolated_precision(rel_at_rank: list[float], num_rels: float, num_rel_ret: float) -> list[float]:
    """Interpolated precision at recall 0, .1, ..., 1 in the script's walk from the deepest rank up."""
    cutoffs = [float(level) * num_rels for level in _RECALL_LEVELS]
    curve = [0.0] * len(cutoffs)
    current = len(cutoffs) - 1
    while current >= 0 and cutoffs[current] > num_rel_ret:
        current -= 1
    int_prec = 0.0
    for rank in range(len(rel_at_rank), 0, -1):
        int_prec = max(int_prec, rel_at_rank[rank - 1] / rank)
        if current >= 0 and cutoffs[current] > rel_at_rank[rank - 1]:
            curve[current] += int_prec
            current -= 1
    while current >= 0:
        curve[current] += int_prec
        current -= 1
    return curve


def _means(
    per_topic: dict[str, dict[str, float]], curves: dict[str, list[float]], cutoffs: tuple[int, ...]
) -> dict[str, float]:
    n = len(per_topic)
    means = {
        "infAP": sum(t["infAP"] for t in per_topic.values()) / n,
        "infNDCG": sum(t["infNDCG"] for t in per_topic.values()) / n,
    }
    # The script sums the 11-point curves in string order of topics, the rest in numeric order.
    for i, key in enumerate(RECALL_KEYS):
        means[key] = sum(curves[topic][i] for topic in sorted(curves)) / n
    for cutoff in cutoffs:
        means[f"iP{cutoff}"] = sum(t[f"iP{cutoff}"] for t in per_topic.values()) / n
    return means


def _totals(
    per_topic: dict[str, dict[str, float]],
    pools: dict[str, _TopicPool],
    scores: dict[str, dict[str, float]],
    max_results: int,
) -> dict[str, float]:
    return {
        "inum_rel_ret": sum(t["inum_rel_ret"] for t in per_topic.values()),
        "inum_rel": sum(pools[topic].estimated_num_rel() for topic in sorted(pools)),
        "num_ret": float(sum(min(len(scores[topic]), max_results) for topic in per_topic)),
    }


def _read_qrels(source: TextSource) -> dict[str, _TopicPool]:
    name = source_name(source)
    pools: dict[str, _TopicPool] = {}
    for number, fields in data_lines(source_lines(source, "qrels file")):
        if len(fields) != 5:
            raise BadInput(
                f"{name}:{number}: expected 5 fields 'topic iteration shotId stratum judgment', got {len(fields)}",
                hint="sample_eval qrels carry a stratum column; 4-column trec_eval qrels need one added",
            )
        topic, _iteration, shot, stratum, grade = fields
        value = _number(grade, f"{name}:{number}: judgment")
        pools.setdefault(topic, _TopicPool()).add(shot, stratum, grade, value)
    if not pools:
        raise BadInput(f"qrels file {name} has no judgments")
    return pools


def _read_run(source: TextSource) -> tuple[dict[str, dict[str, float]], Counter[str]]:
    name = source_name(source)
    scores: dict[str, dict[str, float]] = {}
    line_counts: Counter[str] = Counter()
    for number, fields in data_lines(source_lines(source, "run file")):
        if len(fields) != 6:
            raise BadInput(f"{name}:{number}: expected 6 fields 'topic Q0 shotId rank score runId', got {len(fields)}")
        topic, _q0, shot, _rank, score, _run_id = fields
        scores.setdefault(topic, {})[shot] = _number(score, f"{name}:{number}: score")
        line_counts[topic] += 1
    return scores, line_counts


def _number(token: str, what: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise BadInput(f"{what} is not a number: {token!r}") from None
    if math.isnan(value):
        raise BadInput(f"{what} is NaN")
    return value


def _numeric_order(topic: str) -> tuple[float, str]:
    """The script walks topics with `<=>`; non-numeric ids (which Perl reads as 0) go last here."""
    try:
        return float(topic), topic
    except ValueError:
        return math.inf, topic
