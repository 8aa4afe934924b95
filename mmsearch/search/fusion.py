"""Late fusion of channel rankings, and fused units turned into moments.

- `calibrated` (default): each channel's raw score becomes *evidence*: how many background spreads it stands
  above what that channel typically returns as its best result for a query of this kind with no answer in this
  index (`calibration.py`; capped at 10). score = sum over channels of weight * max(evidence, 0); a unit a
  channel did not return gets 0 from it. Units scoring below CALIBRATED_FLOOR are dropped, so a query with no
  good answer returns few results or none, and a channel that found nothing relevant adds little: its best unit
  sits near its own background. A channel given no background is measured against its own list.
- `rrf`: reciprocal rank fusion, score = sum over channels of weight / (RRF_K + rank). Ranks are comparable
  across channels whose raw scores are not (BM25 vs cosine), but the first result of a channel that found
  nothing counts as much as the first result of one that found the answer.
- `weighted`: each channel's scores min-max normalised to [0, 1] over the list it returned, then
  score = sum of weight * normalised score; a unit a channel did not return gets 0 from it.

Weights (`--weight NAME=W`, default 1) apply to all three. With rrf or weighted and a single channel nothing is
fused: results keep that channel's own score. Ties (frequent in RRF, where each channel's first result scores
1/(RRF_K + 1)) go to the unit with the higher raw channel score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..errors import UsageError
from ..types import ChannelScore, Moment, SegmentHit
from .calibration import Background
from .channels import CHANNELS, Candidate
from .limits import MAX_WEIGHT
from .moments import group_units

FUSIONS: tuple[str, ...] = ("calibrated", "rrf", "weighted")
DEFAULT_FUSION = "calibrated"
# The constant of Cormack, Clarke & Büttcher (SIGIR 2009); it damps the weight of the very first ranks.
RRF_K = 60
# Calibrated units must stand one background spread above a channel's typical best score for a query with no
# answer (beat the best result of ~84% of such queries), or gather that much evidence from several channels.
# benchmarks/fusion.py: a floor of 2 loses a quarter of the keyword answers (Whisper's misheard words leave one
# matching word); 0.5 keeps them all there but more than doubles the unrelated results in the top 5.
CALIBRATED_FLOOR = 1.0


@dataclass(frozen=True)
class Fused:
    candidate: Candidate
    score: float
    channels: dict[str, ChannelScore] = field(default_factory=dict)

    @property
    def tiebreak(self) -> float:
        return max((c.score for c in self.channels.values()), default=0.0)

    @property
    def order(self) -> tuple[float, float, int]:
        """Sort key: fused score, then best raw score, then best channel rank (keeps a channel's own order)."""
        return (-self.score, -self.tiebreak, min((c.rank for c in self.channels.values()), default=0))


def parse_weights(specs: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """`["keyword=2", "visual=0.5"]` -> (("keyword", 2.0), ("visual", 0.5)); UsageError on anything else."""
    out: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep or name not in CHANNELS:
            raise UsageError(
                f"--weight {spec!r} is not NAME=WEIGHT with NAME one of {', '.join(CHANNELS)}",
                hint="e.g. --weight keyword=2",
            )
        try:
            weight = float(value)
        except ValueError as e:
            raise UsageError(f"--weight {spec!r}: {value!r} is not a number") from e
        if not (math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT):
            raise UsageError(f"--weight {spec!r}: a weight is a number from 0 to {MAX_WEIGHT:g}")
        out[name] = weight
    return tuple(out.items())


def fuse(
    lists: Mapping[str, Sequence[Candidate]],
    method: str = "rrf",
    weights: Mapping[str, float] | None = None,
    backgrounds: Mapping[str, Background] | None = None,
) -> list[Fused]:
    """Fused units, best first. `backgrounds` (calibrated only): per channel; a channel without one is measured
    against its own list."""
    weights = weights or {}
    if method not in FUSIONS:
        raise UsageError(f"--fusion must be one of {', '.join(FUSIONS)}, got {method!r}")
    if method == "calibrated":
        return _calibrated(lists, weights, backgrounds or {})
    table: dict[tuple[object, ...], tuple[Candidate, dict[str, ChannelScore]]] = {}
    for name, ranked in lists.items():
        for rank, cand in enumerate(ranked, start=1):
            entry = table.setdefault(cand.key, (cand, {}))
            entry[1][name] = ChannelScore(rank, cand.hit.score)
    live = [name for name, ranked in lists.items() if ranked]
    bounds = {n: (min(c.hit.score for c in r), max(c.hit.score for c in r)) for n, r in lists.items() if r}
    fused = []
    for cand, channels in table.values():
        if len(live) <= 1:
            score = cand.hit.score
        elif method == "rrf":
            score = sum(weights.get(n, 1.0) / (RRF_K + c.rank) for n, c in channels.items())
        else:
            score = sum(weights.get(n, 1.0) * _normalized(bounds[n], c.score) for n, c in channels.items())
        fused.append(Fused(cand, score, channels))
    return _ranked(fused)


def _calibrated(
    lists: Mapping[str, Sequence[Candidate]], weights: Mapping[str, float], backgrounds: Mapping[str, Background]
) -> list[Fused]:
    table: dict[tuple[object, ...], tuple[Candidate, dict[str, ChannelScore]]] = {}
    for name, ranked in lists.items():
        background = backgrounds.get(name) or Background.of([c.hit.score for c in ranked])
        for rank, cand in enumerate(ranked, start=1):
            evidence = background.evidence(cand.hit.score) if background is not None else 0.0
            entry = table.setdefault(cand.key, (cand, {}))
            entry[1][name] = ChannelScore(rank, cand.hit.score, evidence)
    fused = []
    for cand, channels in table.values():
        score = sum(weights.get(n, 1.0) * max(c.evidence or 0.0, 0.0) for n, c in channels.items())
        if score >= CALIBRATED_FLOOR:
            fused.append(Fused(cand, score, channels))
    return _ranked(fused)


def _ranked(fused: list[Fused]) -> list[Fused]:
    fused.sort(key=lambda f: (*f.order, f.candidate.hit.path, f.candidate.hit.start or 0.0))
    return fused


def _normalized(bounds: tuple[float, float], score: float) -> float:
    """Min-max over the channel's own list; a list of equal scores maps them all to 1."""
    lo, hi = bounds
    return 1.0 if hi == lo else (score - lo) / (hi - lo)


def to_moments(fused: Sequence[Fused], limit: int | None = None) -> list[Moment]:
    """Units best first, merged where they overlap or touch in one file (see `moments.group_units`); at most
    `limit` moments. A moment has its best unit's score and channels, and the merged span."""
    units = [(_rescored(f.candidate.hit, f.score), f.channels) for f in fused]
    return group_units(units, limit)


def _rescored(hit: SegmentHit, score: float) -> SegmentHit:
    return replace(hit, score=score)
