"""Temporal queries: "A, then B (then C ...)" as moments of one file where the parts follow each other.

Each part is searched on its own (any channel: say the first sentence, show the second thing). A chain takes one
moment per part, all in one file, each *following* the one before: it starts no earlier and ends later than its
predecessor (so one moment never answers two parts), and starts at most `within` seconds after its predecessor
ends. The result spans from the first part's start to the last part's end; its score is the sum of the parts'
scores (every part must match; stronger parts rank higher). Chains of one file that overlap keep only the best.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..types import Moment

DEFAULT_WITHIN = 60.0
# Moments kept per part before chaining: the parts' own top-k would miss a weaker part of the best chain.
PART_DEPTH = 100


def follows(before: Moment, after: Moment, within: float) -> bool:
    if None in (before.start, before.end, after.start, after.end):
        return False  # still images have no time to follow
    assert before.start is not None and before.end is not None and after.start is not None and after.end is not None
    return after.start >= before.start and after.end > before.end and after.start - before.end <= within


def chain_moments(parts: Sequence[Sequence[Moment]], within: float, limit: int) -> list[Moment]:
    """The best `limit` chains, one moment per part in order, best first."""
    if not parts:
        return []
    # Best chain ending at each moment of the current part: (score, moments of the chain).
    best: list[tuple[float, tuple[Moment, ...]]] = [(m.score, (m,)) for m in parts[0]]
    for part in parts[1:]:
        extended = []
        for m in part:
            before = [(s, chain) for s, chain in best if chain[-1].path == m.path and follows(chain[-1], m, within)]
            if before:
                score, chain = max(before, key=lambda sc: sc[0])
                extended.append((score + m.score, (*chain, m)))
        best = extended
    best.sort(key=lambda sc: (-sc[0], sc[1][0].path, sc[1][0].start or 0.0))
    kept: list[Moment] = []
    for score, chain in best:
        moment = _joined(chain, score)
        if not any(_overlap(moment, k) for k in kept):
            kept.append(moment)
            if len(kept) == limit:
                break
    return kept


def _joined(chain: Sequence[Moment], score: float) -> Moment:
    first, last = chain[0], chain[-1]
    texts = [m.text for m in chain if m.text]
    return Moment(
        path=first.path,
        kind=first.kind,
        start=first.start,
        end=last.end,
        score=score,
        text=" … ".join(texts) if texts else None,
        hits=tuple(h for m in chain for h in m.hits),
        channels=dict(first.channels),
        parts=tuple(chain),
        file_id=first.file_id,
    )


def _overlap(a: Moment, b: Moment) -> bool:
    assert a.start is not None and a.end is not None and b.start is not None and b.end is not None
    return a.path == b.path and a.start < b.end and b.start < a.end
