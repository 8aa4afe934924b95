"""Search stage: embed a text or image query with the index's own model and return ranked moments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .catalog import Catalog
from .decode import load_image
from .embed import Embedder
from .errors import BadInput, MediaError, UsageError
from .index import Manifest, check_model, open_reader
from .models import load_embedder
from .moments import merge_hits
from .paths import display_path
from .store import Device
from .types import MODALITY_KINDS, Moment, SegmentHit, SegmentKind
from .vectors import VectorStore

# Fetch this many segment hits per wanted moment: several frames usually merge into one moment.
OVERSAMPLE = 8


@dataclass(frozen=True)
class Query:
    text: str | None = None
    image: Path | None = None
    modality: str = "any"
    top_k: int = 10

    def validate(self) -> None:
        if self.text is not None and not self.text.strip():
            raise UsageError("the query text is empty")
        if self.text is None and self.image is None:
            raise UsageError("give a query text or --image PATH")
        if self.text is not None and self.image is not None:
            raise UsageError("give either a query text or --image, not both")
        if self.modality not in MODALITY_KINDS:
            raise UsageError(f"--modality must be one of {', '.join(MODALITY_KINDS)}, got {self.modality!r}")
        if self.top_k < 1:
            raise UsageError(f"--top-k must be at least 1, got {self.top_k}")

    @property
    def label(self) -> str:
        return self.text if self.text is not None else f"image:{display_path(self.image or '')}"


def read_query_image(path: Path) -> np.ndarray:
    if path.is_dir():
        raise BadInput(f"--image {display_path(path)} is a directory, not an image")
    if not path.exists():
        raise BadInput(f"--image {display_path(path)} does not exist")
    try:
        return load_image(path)
    except (MediaError, OSError) as e:
        raise BadInput(f"--image {display_path(path)} is not a readable image ({getattr(e, 'message', e)})") from e


class Searcher:
    """A read-only view of an index's last committed state, with the model that built it."""

    def __init__(self, catalog: Catalog, manifest: Manifest, store: VectorStore, embedder: Embedder) -> None:
        self.catalog = catalog
        self.manifest = manifest
        self.store = store
        self.embedder = embedder

    @classmethod
    def open(
        cls,
        index_dir: Path,
        model: str | None = None,
        embedder: Embedder | None = None,
        device: Device = "auto",
    ) -> Searcher:
        catalog, manifest, store = open_reader(index_dir, device)
        try:
            check_model(manifest, model)
            if embedder is None:
                embedder = load_embedder(manifest.model, device)
            elif embedder.spec.raw != manifest.model:
                check_model(manifest, embedder.spec.raw)
        except BaseException:
            catalog.close()
            store.close()
            raise
        return cls(catalog, manifest, store, embedder)

    def close(self) -> None:
        self.catalog.close()
        self.store.close()

    def embed_query(self, query: Query) -> np.ndarray:
        if query.text is not None:
            return self.embedder.embed_texts([query.text.strip()])[0]
        assert query.image is not None  # validate() guarantees one of the two
        return self.embedder.embed_images([read_query_image(query.image)])[0]

    def search(self, query: Query) -> list[Moment]:
        query.validate()
        vector = self.embed_query(query)
        kinds = MODALITY_KINDS[query.modality]
        want = query.top_k * OVERSAMPLE
        while True:
            hits = self.search_vector(vector, want, kinds)
            moments = merge_hits(hits)
            exhausted = want >= self.store.ntotal
            if len(moments) >= query.top_k or exhausted:
                return moments[: query.top_k]
            want *= 4

    def search_segments(self, text: str, k: int, kinds: frozenset[SegmentKind] | None = None) -> list[SegmentHit]:
        """Segment-level hits for a text query (used by TRECVID runs, which score shots, not moments)."""
        if not text.strip():
            raise UsageError("the query text is empty")
        return self.search_vector(self.embedder.embed_texts([text.strip()])[0], k, kinds)

    def search_vector(
        self, vector: np.ndarray, k: int, kinds: frozenset[SegmentKind] | None = None
    ) -> list[SegmentHit]:
        """Top-k segments of the wanted kinds, best first; searches deeper until k of those kinds are found."""
        kinds = kinds or frozenset(SegmentKind)
        depth = k if kinds == frozenset(SegmentKind) else k * 4
        while True:
            result = self.store.search(vector[None, :], depth)
            ids = [int(i) for i in result.ids[0] if i >= 0]
            records = self.catalog.segments_by_ids(ids)
            hits = [
                SegmentHit(i, r.path, r.kind, r.start, r.end, float(s), r.text)
                for i, s in zip(ids, result.scores[0], strict=False)
                if (r := records.get(i)) is not None and r.kind in kinds
            ]
            if len(hits) >= k or depth >= self.store.ntotal:
                return hits[:k]
            depth *= 4
