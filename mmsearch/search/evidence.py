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
from .segment_table import CatalogSegments, SegmentTable


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
    resident: bool = True  # hold the segment table in memory (a server, a TRECVID run), or ask the catalog each time
    _segments: SegmentTable | CatalogSegments | None = field(default=None, init=False, repr=False)
    _last_search: tuple[bytes, int, np.ndarray, np.ndarray] | None = field(default=None, init=False, repr=False)

    def search(self, vector: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of the store's top `depth` for one vector, best first.

        The visual and speech channels search the same store with the same query vector; the deeper search
        (visual's) answers the shallower one from its prefix rather than scanning the index again.
        """
        key = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        last = self._last_search
        if last is not None and last[0] == key and last[1] >= depth:
            return last[2][:depth], last[3][:depth]
        result = self.store.search(vector[None, :], depth)
        ids, scores = np.asarray(result.ids[0]), np.asarray(result.scores[0])
        found = ids >= 0
        self._last_search = (key, depth, ids[found], scores[found])
        return ids[found], scores[found]

    def segments(self) -> SegmentTable | CatalogSegments:
        """Where hits are resolved: the segment table of this commit (on first use, inside the first request's
        catalog snapshot): a server opens it from its cache or builds and caches it; a one-query process opens the
        cache memory-mapped where one exists, else asks the catalog for each hit (building would cost more)."""
        if self._segments is None:
            if self.resident:
                self._segments = SegmentTable.open(self.catalog)
            else:
                self._segments = SegmentTable.cached(self.catalog, resident=False) or CatalogSegments(self.catalog)
        return self._segments


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
        hits = ctx.segments().hits([i for i, _ in scored], [s for _, s in scored], kinds, exclude, limit=k)
        if len(hits) >= k or depth >= index.ntotal:
            return hits[:k]
        depth *= 4
