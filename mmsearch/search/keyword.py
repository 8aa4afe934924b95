"""Keyword channel: BM25 (bm25s) over transcript segments, with English stop words and Snowball stemming.

The BM25 index is built from the catalog's speech segments on the first keyword query after a commit and
cached in the index directory as `bm25-NNNNNNNN/` (NNNNNNNN = the vector generation it matches), so later
queries only open it, memory-mapped: a new `mmsearch query` process reads the vocabulary and the postings of its
own words, not every text. Building at query time instead of at every commit keeps long ingest runs from paying
for it every `--commit-interval`; benchmarks/README.md has the measured build and load times. How the cache is
written and shared: caches.py.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..index.catalog import Catalog
from ..paths import BM25_PREFIX
from .caches import cache_dir, write_cache

log = logging.getLogger(__name__)

_IDS_FILE = "segment_ids.npy"
STOPWORDS = "en_plus"  # bm25s' 179-word English list; its "en" list (33 words) keeps "were", "over"


@functools.cache
def _stemmer() -> Any:
    """One stemmer per process: making one costs more than stemming a query."""
    import Stemmer  # PyStemmer: Snowball stemmers in C

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stop words removed, stemmed: 'Foxes jumped' -> ['fox', 'jump']."""
    import bm25s

    out = bm25s.tokenize(texts, stopwords=STOPWORDS, stemmer=_stemmer(), return_ids=False, show_progress=False)
    return [list(tokens) for tokens in out]


@dataclass
class KeywordIndex:
    """A BM25 index whose document i is the speech segment `segment_ids[i]`."""

    retriever: Any
    segment_ids: np.ndarray

    @classmethod
    def build(cls, ids: list[int], texts: list[str]) -> KeywordIndex:
        import bm25s

        retriever = bm25s.BM25()
        if texts:
            retriever.index(tokenize(texts), show_progress=False)
        return cls(retriever, np.asarray(ids, np.int64))

    def search(self, text: str, k: int) -> list[tuple[int, float]]:
        """(segment id, BM25 score) of the best k segments that share at least one term with `text`, best first
        (ties: the earlier segment first)."""
        tokens = tokenize([text])[0]
        if not tokens or len(self.segment_ids) == 0:
            return []
        rows, scores = self._scores(tokens)
        if len(rows) > k:
            keep = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[keep], scores[keep]
        order = np.lexsort((rows, -scores))
        return [(int(i), float(s)) for i, s in zip(self.segment_ids[rows[order]], scores[order], strict=True) if s > 0]

    def _scores(self, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(document rows, BM25 scores) of the documents holding any of the tokens.

        bm25s stores each term's precomputed BM25 contribution per document (a sparse column); a document's score
        is the sum over the query's terms (a repeated term counts again, as in bm25s). Summing over the query's
        own postings costs what those postings hold, where bm25s' retrieve scores and ranks every document
        (~7 ms of CPU per query at 100k transcript segments, growing linearly with the archive).
        """
        vocab, matrix = self.retriever.vocab_dict, self.retriever.scores
        term_ids = [vocab[t] for t in tokens if t in vocab]
        indptr = matrix["indptr"]
        spans = [(int(indptr[t]), int(indptr[t + 1])) for t in term_ids]
        if not spans:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        rows = np.concatenate([matrix["indices"][a:b] for a, b in spans]).astype(np.int64)
        values = np.concatenate([matrix["data"][a:b] for a, b in spans]).astype(np.float64)
        if len(spans) == 1:
            return rows, values.astype(np.float32)
        unique, inverse = np.unique(rows, return_inverse=True)
        return unique, np.bincount(inverse, weights=values).astype(np.float32)

    def save(self, directory: Path) -> None:
        self.retriever.save(str(directory), show_progress=False)
        np.save(directory / _IDS_FILE, self.segment_ids)

    @classmethod
    def load(cls, directory: Path) -> KeywordIndex:
        """Memory-mapped: opening reads the vocabulary, not the postings, whose pages a query touches are read."""
        import bm25s

        retriever = bm25s.BM25.load(str(directory), mmap=True, show_progress=False)
        return cls(retriever, np.load(directory / _IDS_FILE, mmap_mode="r"))


def keyword_index(catalog: Catalog, index_dir: Path, generation: int) -> KeywordIndex:
    """The cached BM25 index of this generation, else one built from the catalog (and cached when possible)."""
    cached = cache_dir(index_dir, BM25_PREFIX, generation)
    try:
        if (cached / _IDS_FILE).is_file():
            return KeywordIndex.load(cached)
    except (OSError, ValueError) as e:  # another user's cache we may not read, or a damaged one
        log.info("BM25 cache %s unreadable (%s); rebuilding", cached, e)
    ids, texts = catalog.speech_texts()
    index = KeywordIndex.build(ids, texts)
    if len(index.segment_ids):  # an empty index costs nothing to rebuild, and bm25s cannot save one
        write_cache(index_dir, BM25_PREFIX, generation, index.save)
    return index
