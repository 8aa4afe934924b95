"""A deterministic, weight-free embedder registered as `test:hash`, for ranking and plumbing tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from .clip import normalize
from .spec import ModelSpec


class HashEmbedder:
    """Deterministic, weight-free embedder for tests: equal inputs give equal vectors, similar images similar ones.

    Images are reduced to a 16x16 thumbnail and projected; texts are bags of hashed words. It puts text and
    images in one space only formally, so it serves ranking and plumbing tests, never real retrieval.
    """

    DIM = 64

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.dim = self.DIM
        rng = np.random.default_rng(1234)
        self._projection = rng.standard_normal((16 * 16 * 3, self.DIM)).astype(np.float32)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from PIL import Image

        rows = []
        for img in images:
            thumb = np.asarray(
                Image.fromarray(img).convert("RGB").resize((16, 16), Image.Resampling.BILINEAR), np.float32
            )
            rows.append((thumb.reshape(-1) / 255.0 - 0.5) @ self._projection)
        return normalize(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self._text_vector(t) for t in texts]
        return normalize(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)

    def _text_vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.DIM, np.float32)
        for word in "".join(c if c.isalnum() else " " for c in text.lower()).split():
            seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            vec += np.random.default_rng(seed).standard_normal(self.DIM).astype(np.float32)
        if not vec.any():
            vec[0] = 1.0
        return vec
