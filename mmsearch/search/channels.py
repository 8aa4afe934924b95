"""Channels: independent ranked lists of candidates that fusion combines. The registry below is data: a channel
is a name, the segment kinds it ranks, what evidence of the query it needs, and its search function.

- `visual`: frames and still images nearest the query in CLIP space, reported as shots (see `shots.py`).
- `speech`: transcript segments nearest the query in CLIP space; this is what lets an image find audio.
- `keyword`: BM25 over transcript and on-screen text (ocr) segments (see `keyword.py`); queries with words only.
- `text`: sentence embeddings of transcript and ocr segments (see `sentences.py`, the `text` space).
- `audio`: CLAP embeddings of soundtrack windows (see `sounds.py`, the `audio` space).
- `face`: face tracks nearest a query photo's face (see `people.py`, the `face` space).
- `people`: face tracks of the people a text query names (see `people.py`).

`speech`, `keyword` and `text` rank the same units (single segments), so fusion adds up their evidence.
Adding a channel: one module with its search function, one `Channel` entry in `REGISTRY` (see ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..types import CLIP_KINDS, SegmentHit, SegmentKind
from . import people, sentences, sounds
from .evidence import Candidate, ChannelContext, Evidence, Exclusion, segment_key
from .shots import shot_units

__all__ = ["Candidate", "ChannelContext", "Evidence", "Exclusion", "REGISTRY", "CHANNELS", "CHANNEL_KINDS"]

VISUAL, SPEECH, KEYWORD, TEXT, AUDIO = "visual", "speech", "keyword", "text", "audio"
FACE, PEOPLE = "face", "people"
# Frame hits fetched per wanted visual unit: many frames of one shot collapse into one unit.
FRAMES_PER_UNIT = 8

SearchFn = Callable[[ChannelContext, Any, frozenset[SegmentKind], int, "Exclusion | None"], list[Candidate]]


@dataclass(frozen=True)
class Channel:
    name: str
    kinds: frozenset[SegmentKind]  # the segment kinds it ranks
    needs: str  # "visual" / "speech" (CLIP vectors), "text" (words) or "space" (a vector in `space`)
    search: SearchFn
    space: str | None = None  # the extra vector space it searches; its query is embedded once per space
    about: str = ""

    def query(self, evidence: Evidence) -> Any | None:
        """What this channel searches with from the query's evidence; None when the query offers nothing for it."""
        if self.needs == "space":
            return evidence.spaces.get(self.space or "")
        return getattr(evidence, self.needs)


def _visual_search(
    ctx: ChannelContext, vector: np.ndarray, kinds: frozenset[SegmentKind], depth: int, exclude: Exclusion | None
) -> list[Candidate]:
    return _visual(ctx, vector, kinds & REGISTRY[VISUAL].kinds, depth, exclude)


def _speech_search(
    ctx: ChannelContext, vector: np.ndarray, kinds: frozenset[SegmentKind], depth: int, exclude: Exclusion | None
) -> list[Candidate]:
    hits = dense_hits(ctx, vector, depth, REGISTRY[SPEECH].kinds, exclude)
    return [Candidate(segment_key(h), fid, h) for fid, h in hits]


def _keyword_search(
    ctx: ChannelContext, text: str, kinds: frozenset[SegmentKind], depth: int, exclude: Exclusion | None
) -> list[Candidate]:
    return _keyword(ctx, text, kinds, depth, exclude)


_TEXT_KINDS = frozenset({SegmentKind.SPEECH, SegmentKind.OCR, SegmentKind.SUBTITLE})
REGISTRY: dict[str, Channel] = {
    c.name: c
    for c in (
        Channel(
            VISUAL,
            frozenset({SegmentKind.FRAME, SegmentKind.IMAGE}),
            "visual",
            _visual_search,
            None,
            "CLIP frames and images",
        ),
        Channel(
            SPEECH, frozenset({SegmentKind.SPEECH}), "speech", _speech_search, None, "CLIP text tower over transcripts"
        ),
        Channel(
            KEYWORD, _TEXT_KINDS, "text", _keyword_search, None, "BM25 over transcripts, subtitles and on-screen text"
        ),
        Channel(
            TEXT,
            sentences.KINDS | {SegmentKind.SUBTITLE},
            "space",
            sentences.search,
            sentences.SPACE,
            "sentence meaning of transcripts and on-screen text",
        ),
        Channel(AUDIO, sounds.KINDS, "space", sounds.search, sounds.SPACE, "CLAP over soundtrack windows"),
        Channel(FACE, people.KINDS, "space", people.face_search, people.SPACE, "a photo's face against face tracks"),
        Channel(PEOPLE, people.KINDS, "text", people.people_search, None, "face tracks of the people a query names"),
    )
}
CHANNELS: tuple[str, ...] = tuple(REGISTRY)
CHANNEL_KINDS: dict[str, frozenset[SegmentKind]] = {name: c.kinds for name, c in REGISTRY.items()}


def offers(evidence: Evidence, name: str) -> bool:
    return REGISTRY[name].query(evidence) is not None


def run_channel(
    name: str, ctx: ChannelContext, evidence: Evidence, kinds: frozenset[SegmentKind], depth: int
) -> list[Candidate]:
    """The channel's best `depth` candidates of the wanted kinds, best first."""
    channel = REGISTRY[name]
    query = channel.query(evidence)
    if query is None:
        return []
    return channel.search(ctx, query, kinds & channel.kinds, depth, evidence.exclude)


def dense_hits(
    ctx: ChannelContext,
    vector: np.ndarray,
    k: int,
    kinds: frozenset[SegmentKind],
    exclude: Exclusion | None = None,
) -> list[tuple[int, SegmentHit]]:
    """(file id, hit) of the top-k vectors of the wanted kinds; searches deeper until k of them are found."""
    depth = k if kinds >= CLIP_KINDS and exclude is None else k * 4  # the store holds CLIP kinds only
    while True:
        ids, scores = ctx.search(vector, depth)
        hits = ctx.segments().hits(ids, scores, kinds, exclude, limit=k)
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


def _keyword(
    ctx: ChannelContext, text: str, kinds: frozenset[SegmentKind], depth: int, exclude: Exclusion | None
) -> list[Candidate]:
    index = ctx.keyword_index()
    # Over-fetch so that dropping the example's own segments (or other kinds) still leaves `depth` candidates.
    filtered = exclude is not None or kinds != REGISTRY[KEYWORD].kinds
    scored = index.search(text, depth * 4 if filtered else depth)
    hits = ctx.segments().hits([i for i, _ in scored], [s for _, s in scored], kinds, exclude, limit=depth)
    return [Candidate(segment_key(hit), file_id, hit) for file_id, hit in hits]
