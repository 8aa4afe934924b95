"""Synthetic CLIP-like vectors, chunk by chunk, for scale tests and benchmarks (benchmarks/scale.py).

The shape of benchmarks/vector_index.py's `synth_clip`: image-side database vectors are a mixture of SCENES gaussian
clusters around one shared mean direction (CLIP image embeddings share a large common component); image-like
queries are database vectors plus noise (another frame of the same shot); text-like queries are a separate text
mean pulled toward a database vector (CLIP's modality gap: cosine ~0.3 to the target, ~0.1-0.2 to the rest), the
hard case for IVF because they land near many cell borders. Chunk c is a function of (seed, c) only, so 10M
vectors can be generated, indexed and scanned for the exact truth without ever holding them all.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

SCENES = 1_000
CHUNK = 100_000  # vectors per chunk: 200 MB of float32 at 512-d
K = 10


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


class SynthClip:
    def __init__(self, dim: int, seed: int = 0, scenes: int = SCENES) -> None:
        rng = np.random.default_rng(seed)
        self.dim, self.seed, self.scenes = dim, seed, scenes
        self.image_mean = unit(rng.standard_normal((1, dim)))[0]
        self.text_mean = unit(rng.standard_normal((1, dim)))[0]
        self.centres = unit(1.1 * self.image_mean + rng.standard_normal((scenes, dim)) / np.sqrt(dim))

    def chunk(self, c: int, m: int) -> np.ndarray:
        """m database vectors, the c-th chunk."""
        rng = np.random.default_rng((self.seed, c))
        scene = rng.integers(0, self.scenes, m)
        return unit(self.centres[scene] + 0.9 * rng.standard_normal((m, self.dim)) / np.sqrt(self.dim))

    def chunks(self, n: int, size: int = CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        """(first id, vectors) covering ids 0..n-1."""
        for c, start in enumerate(range(0, n, size)):
            yield start, self.chunk(c, min(size, n - start))

    def database(self, n: int) -> np.ndarray:
        return np.concatenate([v for _, v in self.chunks(n)]) if n else np.zeros((0, self.dim), np.float32)

    def queries(self, n: int, count: int) -> dict[str, np.ndarray]:
        """Held-out queries (none is a database vector) aimed at the first min(n, CHUNK) database vectors."""
        rng = np.random.default_rng((self.seed, 1 << 30))
        pool = self.chunk(0, min(CHUNK, n))
        noise = 1 / np.sqrt(self.dim)
        targets = pool[rng.integers(0, len(pool), count)]
        image = unit(targets + 0.5 * noise * rng.standard_normal((count, self.dim)))
        targets = pool[rng.integers(0, len(pool), count)]
        text = unit(self.text_mean + 0.6 * targets + 0.9 * noise * rng.standard_normal((count, self.dim)))
        return {"text": text, "image": image}


def exact_top(chunks: Iterator[tuple[int, np.ndarray]], queries: np.ndarray, k: int = K) -> np.ndarray:
    """Exact top-k ids (inner product) of each query, streaming the database: a running merge of each chunk's top k."""
    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for start, chunk in chunks:
        scores = queries @ chunk.T
        kk = min(k, len(chunk))
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        s = np.concatenate([best_s, np.take_along_axis(scores, top, 1)], axis=1)
        i = np.concatenate([best_i, top + start], axis=1)
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)
    return best_i


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true top-k found in its returned top-k."""
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k].tolist()) & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)]))
