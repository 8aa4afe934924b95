"""What channels work with: a query's evidence, the candidates they return, and the index they search."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..index.catalog import Catalog
from ..stores.protocol import VectorStore
from ..types import SegmentHit, SegmentKind
from .keyword import KeywordIndex


@dataclass(frozen=True)
class Exclusion:
    """A query-by-example's own segment: results of this file overlapping [start, end) are dropped."""

    file_id: int
    start: float | None = None  # None: the whole file
    end: float | None = None

    def covers(self, file_id: int, start: float | None, end: float | None) -> bool:
        if file_id != self.file_id:
            return False
        if self.start is None or self.end is None or start is None:
            return True
        return start < self.end and (end if end is not None else start) > self.start


@dataclass(frozen=True)
class Evidence:
    """What a query offers each channel: CLIP vectors for the visual and speech channels, words for keyword, and
    one vector per extra space (`spaces["text"]`, `spaces["audio"]`) for the channels that search those."""

    visual: np.ndarray | None
    speech: np.ndarray | None
    text: str | None
    exclude: Exclusion | None = None
    spaces: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Candidate:
    """One unit a channel ranks. `key` identifies it across channels (a segment, a shot, an image)."""

    key: tuple[object, ...]
    file_id: int
    hit: SegmentHit


def segment_key(hit: SegmentHit) -> tuple[object, ...]:
    """The key of a unit that is one segment: channels ranking the same segments share it, so fusion adds them up."""
    return ("segment", hit.segment_id)


class SpaceSearch(Protocol):
    """An extra vector space, searchable by inner product: (segment id, score) pairs, best first."""

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]: ...

    @property
    def ntotal(self) -> int: ...


@dataclass
class ChannelContext:
    """What channels search: the catalog, the CLIP vectors, the keyword index and the extra spaces (loaded lazily)."""

    catalog: Catalog
    store: VectorStore
    keyword_index: Callable[[], KeywordIndex]
    space: Callable[[str], SpaceSearch | None] = lambda name: None


SpaceChannel = Callable[
    [ChannelContext, np.ndarray, frozenset[SegmentKind], int, "Exclusion | None"], "list[Candidate]"
]


def space_search(space: str) -> SpaceChannel:
    """A channel that ranks single segments of one extra space by their cosine with the query's vector there."""

    def search(
        ctx: ChannelContext, vector: np.ndarray, kinds: frozenset[SegmentKind], depth: int, exclude: Exclusion | None
    ) -> list[Candidate]:
        return [Candidate(segment_key(h), fid, h) for fid, h in space_hits(ctx, space, vector, depth, kinds, exclude)]

    return search


def space_hits(
    ctx: ChannelContext,
    space: str,
    vector: np.ndarray,
    k: int,
    kinds: frozenset[SegmentKind],
    exclude: Exclusion | None,
) -> list[tuple[int, SegmentHit]]:
    """(file id, hit) of the top-k segments of the wanted kinds in an extra space; searches deeper until found."""
    index = ctx.space(space)
    if index is None:
        return []
    depth = k * 4
    while True:
        scored = index.search(vector, depth)
        records = ctx.catalog.segments_by_ids(i for i, _ in scored)
        hits = [
            (r.file_id, SegmentHit(i, r.path, r.kind, r.start, r.end, s, r.text))
            for i, s in scored
            if (r := records.get(i)) is not None
            and r.kind in kinds
            and not (exclude and exclude.covers(r.file_id, r.start, r.end))
        ]
        if len(hits) >= k or depth >= index.ntotal:
            return hits[:k]
        depth *= 4
