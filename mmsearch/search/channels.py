"""Channels: independent ranked lists of candidates that fusion combines.

- `visual`: frames and still images nearest the query in CLIP space, reported as shots (see `shots.py`).
- `speech`: transcript segments nearest the query in CLIP space; this is what lets an image find audio.
- `keyword`: BM25 over transcript segments (see `keyword.py`); only queries that carry words use it.

`speech` and `keyword` rank the same units (transcript segments), so fusion can add up their evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..index.catalog import Catalog
from ..stores.protocol import VectorStore
from ..types import SegmentHit, SegmentKind
from .keyword import KeywordIndex
from .shots import shot_units

VISUAL, SPEECH, KEYWORD = "visual", "speech", "keyword"
CHANNELS: tuple[str, ...] = (VISUAL, SPEECH, KEYWORD)
CHANNEL_KINDS: dict[str, frozenset[SegmentKind]] = {
    VISUAL: frozenset({SegmentKind.FRAME, SegmentKind.IMAGE}),
    SPEECH: frozenset({SegmentKind.SPEECH}),
    KEYWORD: frozenset({SegmentKind.SPEECH}),
}
# Frame hits fetched per wanted visual unit: many frames of one shot collapse into one unit.
FRAMES_PER_UNIT = 8


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
    """What a query offers each channel: a CLIP vector for the visual and speech channels, words for keyword."""

    visual: np.ndarray | None
    speech: np.ndarray | None
    text: str | None
    exclude: Exclusion | None = None

    def offers(self, channel: str) -> bool:
        return {VISUAL: self.visual, SPEECH: self.speech, KEYWORD: self.text}[channel] is not None


@dataclass(frozen=True)
class Candidate:
    """One unit a channel ranks. `key` identifies it across channels (a speech segment, a shot, an image)."""

    key: tuple[object, ...]
    file_id: int
    hit: SegmentHit


@dataclass
class ChannelContext:
    """What channels search: the catalog, the vectors, and the keyword index (loaded on first use)."""

    catalog: Catalog
    store: VectorStore
    keyword_index: Callable[[], KeywordIndex]


def run_channel(
    name: str, ctx: ChannelContext, evidence: Evidence, kinds: frozenset[SegmentKind], depth: int
) -> list[Candidate]:
    """The channel's best `depth` candidates of the wanted kinds, best first."""
    if name == VISUAL and evidence.visual is not None:
        return _visual(ctx, evidence.visual, kinds & CHANNEL_KINDS[VISUAL], depth, evidence.exclude)
    if name == SPEECH and evidence.speech is not None:
        hits = dense_hits(ctx, evidence.speech, depth, CHANNEL_KINDS[SPEECH], evidence.exclude)
        return [Candidate(_speech_key(h), fid, h) for fid, h in hits]
    if name == KEYWORD and evidence.text is not None:
        return _keyword(ctx, evidence.text, depth, evidence.exclude)
    return []


def dense_hits(
    ctx: ChannelContext,
    vector: np.ndarray,
    k: int,
    kinds: frozenset[SegmentKind],
    exclude: Exclusion | None = None,
) -> list[tuple[int, SegmentHit]]:
    """(file id, hit) of the top-k vectors of the wanted kinds; searches deeper until k of them are found."""
    depth = k if kinds == frozenset(SegmentKind) and exclude is None else k * 4
    while True:
        result = ctx.store.search(vector[None, :], depth)
        ids = [int(i) for i in result.ids[0] if i >= 0]
        records = ctx.catalog.segments_by_ids(ids)
        hits = [
            (r.file_id, SegmentHit(i, r.path, r.kind, r.start, r.end, float(s), r.text))
            for i, s in zip(ids, result.scores[0], strict=False)
            if (r := records.get(i)) is not None
            and r.kind in kinds
            and not (exclude and exclude.covers(r.file_id, r.start, r.end))
        ]
        if len(hits) >= k or depth >= ctx.store.ntotal:
            return hits[:k]
        depth *= 4


def _visual(
    ctx: ChannelContext, vector: np.ndarray, kinds: frozenset[SegmentKind], depth: int, exclude: Exclusion | None
) -> list[Candidate]:
    want = depth * FRAMES_PER_UNIT
    while True:
        hits = dense_hits(ctx, vector, want, kinds, exclude)
        units = shot_units(hits, ctx.catalog.shots_of({fid for fid, _ in hits}))
        # A shot that holds the example's frames is the example itself, even where its own frames were dropped.
        units = [u for u in units if not (exclude and exclude.covers(u.file_id, u.hit.start, u.hit.end))]
        if len(units) >= depth or len(hits) < want:
            return [Candidate((VISUAL, u.file_id, u.hit.start, u.hit.end), u.file_id, u.hit) for u in units[:depth]]
        want *= 4


def _speech_key(hit: SegmentHit) -> tuple[object, ...]:
    return (SPEECH, hit.segment_id)


def _keyword(ctx: ChannelContext, text: str, depth: int, exclude: Exclusion | None) -> list[Candidate]:
    index = ctx.keyword_index()
    # Over-fetch so that dropping the example's own segments still leaves `depth` candidates.
    scored = index.search(text, depth * 2 if exclude else depth)
    records = ctx.catalog.segments_by_ids(i for i, _ in scored)
    out = []
    for seg_id, score in scored:
        r = records.get(seg_id)
        if r is None or (exclude and exclude.covers(r.file_id, r.start, r.end)):
            continue
        hit = SegmentHit(seg_id, r.path, r.kind, r.start, r.end, score, r.text)
        out.append(Candidate(_speech_key(hit), r.file_id, hit))
    return out[:depth]
