"""Search: the orchestrator. Builds the query's evidence, runs the channels that apply, fuses them into moments."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import BadInput, MediaError, UsageError
from ..index.facade import Index
from ..index.location import IndexLocation
from ..index.manifest import check_model, space_infos
from ..ingest.decode import load_image
from ..models.clip import Embedder
from ..models.precision import EmbedChoice
from ..models.registry import load_embedder
from ..paths import display_path
from ..stores.protocol import vector_device
from ..types import MODALITY_KINDS, MODALITY_MEDIA, MediaKind, Moment, SegmentHit, SegmentKind
from .calibration import PROBE_DEPTH, PROBE_TEXTS, Background, Calibration, probe_images
from .channels import (
    CHANNEL_KINDS,
    CHANNELS,
    FACE,
    REGISTRY,
    Candidate,
    ChannelContext,
    Evidence,
    dense_hits,
    offers,
    run_channel,
)
from .fusion import DEFAULT_FUSION, FUSIONS, fuse, to_moments
from .keyword import KeywordIndex, keyword_index
from .like import LikeSpec, example_evidence, resolve_like
from .people import FACE_BACKGROUND_CENTER, FACE_BACKGROUND_SPREAD, person_moments, photo_face, with_person
from .people import SPACE as FACE_SPACE
from .spaces import Spaces
from .temporal import DEFAULT_WITHIN, PART_DEPTH, chain_moments

# Units each channel contributes to fusion: enough below the top-k that fusion can promote them.
MIN_CHANNEL_DEPTH = 50
CHANNEL_DEPTH_FACTOR = 4
# A --modality that keeps only some files searches this much deeper, so that filtering still leaves enough.
FILTERED_DEPTH_FACTOR = 4


@dataclass(frozen=True)
class Query:
    text: str | None = None
    image: Path | None = None
    modality: str = "any"
    top_k: int = 10
    like: LikeSpec | None = None  # query by example: an indexed file or a time range of it
    channels: tuple[str, ...] = ()  # empty: every channel that applies
    fusion: str = DEFAULT_FUSION
    weights: tuple[tuple[str, float], ...] = ()
    kinds: tuple[str, ...] = ()  # segment kinds (frame, speech, image, ...); empty: all that --modality covers
    then: tuple[str, ...] = ()  # temporal query: texts that must follow the query's match, in order
    within: float = DEFAULT_WITHIN  # seconds allowed between one part's end and the next part's start
    face: Path | None = None  # a photo: moments of the person whose face it shows (the face channel)
    face_index: int | None = None  # which face of the photo (1 = largest); None: the largest
    person: str | None = None  # a person's id or name: alone, their moments; with a query, only moments with them

    def validate(self, like_pending: bool = False) -> None:
        """UsageError for what no index can answer; `like_pending`: an example is given but not resolved yet
        (the CLI resolves `--like PATH` once the index is open)."""
        if self.text is not None and not self.text.strip():
            raise UsageError("the query text is empty")
        given = sum(x is not None for x in (self.text, self.image, self.like, self.face)) + like_pending
        if given == 0 and self.person is None:
            raise UsageError("give a query text or --image PATH (or --like PATH[@START-END], --face PHOTO, --person)")
        if given > 1:
            raise UsageError("give only one of a query text, --image, --like or --face")
        if self.face_index is not None and (self.face is None or self.face_index < 1):
            raise UsageError("--face-index N needs --face PHOTO and N >= 1 (1 = the largest face)")
        if self.person is not None and not self.person.strip():
            raise UsageError("--person is empty")
        if self.modality not in MODALITY_KINDS:
            raise UsageError(f"--modality must be one of {', '.join(MODALITY_KINDS)}, got {self.modality!r}")
        if self.top_k < 1:
            raise UsageError(f"--top-k must be at least 1, got {self.top_k}")
        for name in self.channels:
            if name not in CHANNELS:
                raise UsageError(f"unknown channel {name!r}: use {', '.join(CHANNELS)}")
        if self.fusion not in FUSIONS:
            raise UsageError(f"--fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if self.like is not None:
            self.like.validate()
        self._validate_filters()

    def _validate_filters(self) -> None:
        known = [k.value for k in SegmentKind]
        for kind in self.kinds:
            if kind not in known:
                raise UsageError(f"--kind must be one of {', '.join(known)}, got {kind!r}")
        if any(not t.strip() for t in self.then):
            raise UsageError("a --then text is empty")
        if not self.within > 0:
            raise UsageError(f"--within must be a positive number of seconds, got {self.within}")

    @property
    def segment_kinds(self) -> frozenset[SegmentKind]:
        """What --modality covers, narrowed by --kind."""
        kinds = MODALITY_KINDS[self.modality]
        return kinds & frozenset(SegmentKind(k) for k in self.kinds) if self.kinds else kinds

    @property
    def probe_kind(self) -> str:
        """The calibration background that fits this query (see calibration.py)."""
        return "like" if self.like is not None else "text" if self.text is not None else "image"

    @property
    def label(self) -> str:
        if self.like is not None:
            return self.like.label
        if self.face is not None:
            return f"face:{display_path(self.face)}"
        if self.text is None and self.image is None:
            return f"person:{self.person}"
        first = self.text if self.text is not None else f"image:{display_path(self.image or '')}"
        return " --then ".join((first, *self.then))


def plan_channels(query: Query, evidence: Evidence) -> dict[str, frozenset[SegmentKind]]:
    """The channels a query runs and the segment kinds each searches; UsageError for a channel that cannot."""
    kinds = query.segment_kinds
    wanted = query.channels or CHANNELS
    plan: dict[str, frozenset[SegmentKind]] = {}
    for name in wanted:
        searched = CHANNEL_KINDS[name] & kinds
        if not offers(evidence, name):
            if query.channels:
                raise UsageError(f"channel {name!r} {_why_not(name, query)}")
        elif not searched:
            if query.channels:
                raise UsageError(f"channel {name!r} searches nothing of --modality {query.modality} / --kind")
        else:
            plan[name] = searched
    return plan


def _why_not(name: str, query: Query) -> str:
    channel = REGISTRY[name]
    if channel.space is None or query.text is None:
        return "needs words to search for; this query has none" if channel.needs == "text" else "cannot use this query"
    return (
        f"has nothing to search: the index has no {channel.space} space, or its model is unavailable"
        f" (index with --{channel.space}-model)"
    )


def read_query_image(path: Path) -> np.ndarray:
    if path.is_dir():
        raise BadInput(f"--image {display_path(path)} is a directory, not an image")
    if not path.exists():
        raise BadInput(f"--image {display_path(path)} does not exist")
    if not path.is_file():  # a FIFO or device would block the read forever, or never end
        raise BadInput(f"--image {display_path(path)} is not a regular file")
    try:
        return load_image(path)
    except (MediaError, OSError) as e:
        raise BadInput(f"--image {display_path(path)} is not a readable image ({getattr(e, 'message', e)})") from e


class Searcher:
    """A read-only view of an index's last committed state, with the model that built it."""

    def __init__(self, index: Index, embedder: Embedder, resident: bool = True) -> None:
        self.index = index
        self.catalog = catalog = index.catalog
        self.manifest = manifest = index.manifest
        self.store = store = index.store
        self.embedder = embedder
        # A shared index has no local directory: its keyword index is built from the catalog, in memory.
        self.index_dir = index_dir = None if index.location.shared else index.location.directory
        self._keyword: KeywordIndex | None = None
        self._media: dict[int, MediaKind] | None = None
        self.spaces = Spaces(catalog, space_infos(manifest.raw), "cpu")
        self.context = ChannelContext(catalog, store, self.keyword_index, self.spaces.index, resident)
        self.calibration = Calibration(index_dir, manifest.generation, CHANNELS, self._probes, self._probe)

    @classmethod
    def open(
        cls,
        index_dir: Path | IndexLocation,
        model: str | None = None,
        embedder: Embedder | None = None,
        device: str = "auto",  # where the model runs (auto, cpu, cuda, gpu, mps) and the vectors are searched
        catalog_url: str | None = None,  # postgresql://: a shared index; index_dir is then not read
        resident: bool = True,  # False for one query: resolve hits through the catalog, build no segment table
    ) -> Searcher:
        index = Index.read(IndexLocation.of(index_dir, catalog_url), vector_device(device))
        manifest = index.manifest
        try:
            check_model(manifest, model)
            if embedder is None:
                embedder = load_embedder(manifest.model, device, EmbedChoice.of_index(manifest.raw, device))
            elif embedder.spec.raw != manifest.model:
                check_model(manifest, embedder.spec.raw)
        except BaseException:
            index.close()
            raise
        return cls(index, embedder, resident)

    def close(self) -> None:
        self.index.close()

    def keyword_index(self) -> KeywordIndex:
        if self._keyword is None:
            if self.index_dir is None:
                ids, texts, languages = self.catalog.speech_texts()
                self._keyword = KeywordIndex.build(ids, texts, languages)
            else:
                self._keyword = keyword_index(self.catalog, self.index_dir, self.manifest.generation)
        return self._keyword

    def like(self, spec: str) -> LikeSpec:
        """`PATH[@START-END]` of a file in this index (it need not be on disk any more) as a query by example."""
        return resolve_like(self.catalog, spec)

    def evidence(self, query: Query) -> Evidence:
        """What the query offers each channel: a CLIP vector for text and image queries, stored vectors for --like;
        a text query is also embedded once into each extra space a wanted channel searches."""
        if query.like is not None:
            return example_evidence(self.catalog, self.store, query.like)
        if query.text is not None:
            text = query.text.strip()
            named = query.channels or [n for n in CHANNELS if CHANNEL_KINDS[n] & query.segment_kinds]
            channels = [REGISTRY[n] for n in named]
            # The CLIP text tower is most of a query's time: a query no CLIP channel serves (keyword only) skips it.
            clip = any(c.needs in ("visual", "speech") for c in channels)
            vector = self.embedder.embed_texts([text])[0] if clip else None
            wanted = sorted({c.space for c in channels if c.space is not None})
            spaces = {s: v for s in wanted if (v := self.spaces.embed_query(s, text)) is not None}
            return Evidence(visual=vector, speech=vector, text=text, spaces=spaces)
        if query.face is not None:
            face = photo_face(read_query_image(query.face), query.face_index, label=display_path(query.face))
            return Evidence(visual=None, speech=None, text=None, spaces={FACE_SPACE: face})
        assert query.image is not None  # validate() guarantees one of the four
        vector = self.embedder.embed_images([read_query_image(query.image)])[0]
        return Evidence(visual=vector, speech=vector, text=None)

    def search(self, query: Query) -> list[Moment]:
        """The top-k moments: each channel that applies, fused, merged; with `then`, chains of the parts' moments."""
        query.validate()
        if query.person is not None:
            if query.text is None and query.image is None and query.like is None and query.face is None:
                return person_moments(self.catalog, query.person, query.top_k)
            wide = replace(query, person=None, top_k=max(query.top_k * 10, MIN_CHANNEL_DEPTH))
            return with_person(self.search(wide), self.catalog, query.person)[: query.top_k]
        if not query.then:
            return self.moments(query, query.top_k)
        first = replace(query, then=())
        rest = [replace(first, text=t.strip(), image=None, like=None) for t in query.then]
        parts = [self.moments(q, PART_DEPTH) for q in (first, *rest)]
        return chain_moments(parts, query.within, query.top_k)

    def moments(self, query: Query, limit: int) -> list[Moment]:
        """At most `limit` moments of one (non-temporal) query, best first."""
        evidence = self.evidence(query)
        plan = plan_channels(query, evidence)
        media = MODALITY_MEDIA[query.modality]
        depth = max(MIN_CHANNEL_DEPTH, min(limit, PART_DEPTH) * CHANNEL_DEPTH_FACTOR)
        depth *= FILTERED_DEPTH_FACTOR if media is not None else 1
        lists = {name: run_channel(name, self.context, evidence, kinds, depth) for name, kinds in plan.items()}
        if media is not None:
            lists = {name: self._in_media(ranked, media) for name, ranked in lists.items()}
        backgrounds = self.calibration.backgrounds(query.probe_kind) if query.fusion == "calibrated" else None
        if backgrounds is not None and FACE in plan:  # its scores mean the same in every index: a fixed background
            backgrounds = {**backgrounds, FACE: Background(FACE_BACKGROUND_CENTER, FACE_BACKGROUND_SPREAD, 0)}
        return to_moments(fuse(lists, query.fusion, dict(query.weights), backgrounds), limit)

    def _in_media(self, ranked: Sequence[Candidate], media: frozenset[MediaKind]) -> list[Candidate]:
        if self._media is None:
            self._media = {f.id: f.kind for f in self.catalog.files()}
        return [c for c in ranked if self._media.get(c.file_id) in media]

    def _probes(self, kind: str, rng: random.Random) -> Sequence[Evidence]:
        """Calibration probes of one query kind (see calibration.py)."""
        texts = [self.evidence(Query(text=t)) for t in PROBE_TEXTS] if kind != "image" else []
        images: list[np.ndarray] = list(self.embedder.embed_images(probe_images(rng))) if kind != "text" else []
        if kind == "text":
            return texts
        if kind == "image":
            return [Evidence(visual=v, speech=v, text=None) for v in images]
        return [replace(t, visual=v) for t, v in zip(texts, images, strict=False)]

    def _probe(self, name: str, evidence: Evidence) -> list[Candidate]:
        return run_channel(name, self.context, evidence, CHANNEL_KINDS[name], PROBE_DEPTH)

    def search_segments(self, text: str, k: int, kinds: frozenset[SegmentKind] | None = None) -> list[SegmentHit]:
        """Segment-level hits for a text query (used by TRECVID runs, which score shots, not moments)."""
        if not text.strip():
            raise UsageError("the query text is empty")
        return self.search_vector(self.embedder.embed_texts([text.strip()])[0], k, kinds)

    def search_vector(
        self, vector: np.ndarray, k: int, kinds: frozenset[SegmentKind] | None = None
    ) -> list[SegmentHit]:
        """Top-k segments of the wanted kinds, best first; searches deeper until k of those kinds are found."""
        return [hit for _, hit in dense_hits(self.context, vector, k, kinds or frozenset(SegmentKind))]
