"""Late fusion of channel rankings, and fused units turned into moments.

- `rrf` (default): reciprocal rank fusion, score = sum over channels of weight / (RRF_K + rank). Ranks are
  comparable across channels whose raw scores are not (BM25 vs cosine), which is why it is the default.
- `weighted`: each channel's scores min-max normalised to [0, 1] over the list it returned, then
  score = sum of weight * normalised score; a unit a channel did not return gets 0 from it.

Weights (`--weight NAME=W`, default 1) apply to both. With a single channel nothing is fused: results keep that
channel's own score, so a `--modality video` query still reports cosine similarities. Ties (frequent in RRF,
where each channel's first result scores 1/(RRF_K + 1)) go to the unit with the higher raw channel score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import UsageError
from ..types import ChannelScore, Moment, SegmentHit, SegmentKind
from .channels import CHANNELS, Candidate
from .moments import merge_hits

FUSIONS: tuple[str, ...] = ("rrf", "weighted")
# The constant of Cormack, Clarke & Büttcher (SIGIR 2009); it damps the weight of the very first ranks.
RRF_K = 60


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
        if not weight >= 0 or weight == float("inf"):
            raise UsageError(f"--weight {spec!r}: the weight must be a finite number >= 0")
        out[name] = weight
    return tuple(out.items())


def fuse(
    lists: Mapping[str, Sequence[Candidate]], method: str = "rrf", weights: Mapping[str, float] | None = None
) -> list[Fused]:
    """Fused units, best first."""
    weights = weights or {}
    if method not in FUSIONS:
        raise UsageError(f"--fusion must be one of {', '.join(FUSIONS)}, got {method!r}")
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
    fused.sort(key=lambda f: (*f.order, f.candidate.hit.path, f.candidate.hit.start or 0.0))
    return fused


def _normalized(bounds: tuple[float, float], score: float) -> float:
    """Min-max over the channel's own list; a list of equal scores maps them all to 1."""
    lo, hi = bounds
    return 1.0 if hi == lo else (score - lo) / (hi - lo)


def to_moments(fused: Sequence[Fused]) -> list[Moment]:
    """Visual units (shots, windows, images) are moments as they are; touching speech units of one file merge.

    A merged moment shows the channels of its best unit.
    """
    by_key = {f.candidate.key: f for f in fused}
    ranked: list[tuple[Moment, tuple[float, float, int]]] = []
    speech: list[SegmentHit] = []
    speech_keys: dict[int, tuple[object, ...]] = {}
    for f in fused:
        hit = _rescored(f.candidate.hit, f.score)
        if hit.kind is SegmentKind.SPEECH:
            speech.append(hit)
            speech_keys[hit.segment_id] = f.candidate.key
        else:
            moment = Moment(hit.path, hit.kind, hit.start, hit.end, f.score, hit.text, (hit,), f.channels)
            ranked.append((moment, f.order))
    for m in merge_hits(speech):
        best = by_key[speech_keys[max(m.hits, key=lambda h: h.score).segment_id]]
        moment = Moment(m.path, m.kind, m.start, m.end, m.score, m.text, m.hits, best.channels)
        ranked.append((moment, (-m.score, *best.order[1:])))
    ranked.sort(key=lambda mt: (*mt[1], mt[0].path, mt[0].start or 0.0))
    return [m for m, _ in ranked]


def _rescored(hit: SegmentHit, score: float) -> SegmentHit:
    return SegmentHit(hit.segment_id, hit.path, hit.kind, hit.start, hit.end, score, hit.text)
