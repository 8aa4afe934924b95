"""The extra vector spaces of an index at query time: a FAISS index per space, and the model that embeds queries.

The vectors live in the catalog (`space_vectors`, written in the same transaction as their segments), so a
reader sees exactly the committed state; each space is loaded into its own exact inner-product FAISS index on
first use. Each space's model is the one the manifest records; one that cannot be loaded turns its channel off
with one warning line, and the other channels answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..errors import MMSearchError
from ..index.catalog import Catalog
from ..index.manifest import SpaceInfo
from ..models.clap import ClapEmbedder
from ..models.sentence import SentenceEmbedder

log = logging.getLogger(__name__)


class QueryEncoder(Protocol):
    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


def _sentence(model: str, device: str) -> QueryEncoder:
    return SentenceEmbedder.load(model, "gpu" if device == "gpu" else "cpu")


def _clap(model: str, device: str) -> QueryEncoder:
    return ClapEmbedder.load(model)


# Space name -> how to load the model that embeds text queries into it (registries as data).
ENCODERS: dict[str, Callable[[str, str], QueryEncoder]] = {"text": _sentence, "audio": _clap}


class FlatSpace:
    """Exact inner-product search over one space's vectors (L2-normalised, so scores are cosines)."""

    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        import faiss

        self._ids = ids
        self._index = faiss.IndexFlatIP(vectors.shape[1])
        if len(ids):
            self._index.add(np.ascontiguousarray(vectors, np.float32))

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.ntotal == 0:
            return []
        scores, rows = self._index.search(np.asarray(vector, np.float32)[None, :], min(k, self.ntotal))
        return [(int(self._ids[r]), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]


class Spaces:
    """The extra spaces of one index, each loaded (vectors and query model) on first use."""

    def __init__(self, catalog: Catalog, infos: dict[str, SpaceInfo], device: str = "cpu") -> None:
        self._catalog = catalog
        self.infos = infos
        self._device = device
        self._indexes: dict[str, FlatSpace] = {}
        self._encoders: dict[str, QueryEncoder | None] = {}

    def index(self, name: str) -> FlatSpace | None:
        info = self.infos.get(name)
        if info is None:
            return None
        if name not in self._indexes:
            self._indexes[name] = FlatSpace(*self._catalog.space_vectors(name, info.dim))
        return self._indexes[name]

    def embed_query(self, name: str, text: str) -> np.ndarray | None:
        """The query in space `name`, or None when the index has no such space or its model is unavailable."""
        encoder = self.encoder(name)
        return None if encoder is None else encoder.embed_texts([text])[0]

    def encoder(self, name: str) -> QueryEncoder | None:
        if name not in self._encoders:
            info, load = self.infos.get(name), ENCODERS.get(name)
            self._encoders[name] = None
            if info is not None and load is not None:
                try:
                    self._encoders[name] = load(info.model, self._device)
                except (MMSearchError, ImportError, OSError) as e:
                    reason = getattr(e, "message", None) or str(e).splitlines()[0]
                    log.warning("%s channel off: model %s cannot be loaded: %s", name, info.model, reason)
        return self._encoders[name]
