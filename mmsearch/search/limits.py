"""Bounds on the work one query may ask for, the same for `mmsearch query` and the HTTP API.

A temporal query's cost grows with its parts (each is a full search, then chains are joined): 2,000 `then=`
parts held the server's one search lock for 15-20 s. The bounds are far above what a person types and far
below what blocks a server: the longest caption-like query we use in tests is ~200 characters, and TRECVID
topics are under 300.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import UsageError

MAX_THEN_PARTS = 8
MAX_QUERY_CHARS = 1000
MAX_TOP_K = 1000
MAX_WEIGHT = 100.0
# A day: no temporal query joins moments further apart, and no media span is longer than this many hours.
MAX_WITHIN_S = 86_400.0
# Seconds into a file (a --like range, a thumbnail time): a year of media.
MAX_SECONDS = 365 * 86_400.0


def check_query_limits(
    text: str | None,
    then: Sequence[str],
    top_k: int,
    weights: Sequence[tuple[str, float]],
    within: float,
) -> None:
    """UsageError (exit 2, HTTP 422) when a query asks for more than the bounds above."""
    if len(then) > MAX_THEN_PARTS:
        raise UsageError(f"at most {MAX_THEN_PARTS} --then parts, got {len(then)}")
    for part in (text or "", *then):
        if len(part) > MAX_QUERY_CHARS:
            raise UsageError(f"a query text is {len(part)} characters: at most {MAX_QUERY_CHARS}")
    if not 1 <= top_k <= MAX_TOP_K:
        raise UsageError(f"--top-k must be between 1 and {MAX_TOP_K}, got {top_k}")
    for name, weight in weights:
        check_weight(name, weight)
    if not (math.isfinite(within) and 0 < within <= MAX_WITHIN_S):
        raise UsageError(f"--within must be a number of seconds in (0, {MAX_WITHIN_S:g}], got {within}")


def check_weight(name: str, weight: float) -> None:
    if not (math.isfinite(weight) and 0 <= weight <= MAX_WEIGHT):
        raise UsageError(f"--weight {name}={weight}: a weight is a number from 0 to {MAX_WEIGHT:g}")
