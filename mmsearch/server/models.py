"""Response shapes of the HTTP API; `/openapi.json` and `/docs` are generated from them.

A search result has exactly the fields of `mmsearch query --json` (built by `search.results.moment_json`),
plus where to get the media and a picture of the moment.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ChannelScoreOut(BaseModel):
    rank: int = Field(description="Where this channel ranked the moment (1 = best).")
    score: float = Field(description="The channel's own score, before fusion.")
    evidence: float | None = Field(default=None, description="Calibrated fusion: how far above the background.")


class EvidenceOut(BaseModel):
    kind: str = Field(description="speech, subtitle, ocr (text on screen), frame, image or audio.")
    start: float | None
    end: float | None
    text: str | None
    channel: int | None = Field(default=None, description="Stereo channel the speech was heard in (0 left, 1 right).")
    score: float


class MomentOut(BaseModel):
    """One moment, as `mmsearch query --json` prints it."""

    path: str
    file_id: int | None = Field(default=None, description="Catalog id of the file.")
    kind: str = Field(
        description="Segment kind: frame (video), speech, subtitle, image, ocr (text on screen) or audio (a sound window)."
    )
    start: float | None
    end: float | None
    score: float
    text: str | None = Field(description="Transcript of a speech moment.")
    evidence: list[EvidenceOut] | None = Field(
        default=None, description="Each unit the moment merged (speech, subtitles, on-screen text), with its time."
    )
    parts: list[MomentOut] | None = Field(
        default=None, description="A temporal query (then=...): the moment each part matched, in order."
    )
    channels: dict[str, ChannelScoreOut] | None = Field(
        default=None, description="Only with explain=true: each channel's rank and score."
    )


class SearchResult(MomentOut):
    file_id: int = Field(description="Catalog id of the file: /media/{file_id}, like={file_id}.")
    media_kind: str = Field(description="What the file is: video, audio or image.")
    media_url: str
    thumbnail_url: str | None = Field(description="A JPEG of the moment; null for audio files.")
    matched_words: list[str] = Field(
        default_factory=list,
        description="Words of `text` the keyword channel matched (its stemming and stop words); empty: found by "
        "meaning.",
    )


class SearchResponse(BaseModel):
    query: str = Field(description="The query as `mmsearch query --json` labels it.")
    results: list[SearchResult]
    image: str | None = Field(
        default=None, description="An image search: the SHA-256 the image is kept under (`/api/search?image=`)."
    )


class ChannelOut(BaseModel):
    name: str = Field(description="What /api/search's channel= takes.")
    label: str = Field(description="The name a person reads.")
    about: str = Field(description="What the channel searches.")
    queries: list[str] = Field(description="The queries it can search with: text, image, like (by example).")


class IndexInfo(BaseModel):
    """`mmsearch info --json`, plus `channels`."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    index: str = Field(description="The index directory's name (not its path on the server).")
    files: int
    segments: dict[str, int]
    vectors: int
    model: str
    model_untrained: bool
    dim: int
    backend: str
    index_type: str
    generation: int
    schema_version: int
    size_bytes: int
    channels: list[ChannelOut] = Field(description="The search channels this index has something for.")


class ErrorOut(BaseModel):
    error: str
    hint: str | None = None
