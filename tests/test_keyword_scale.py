"""The keyword index at scale (issue 27): its own scorer ranks as bm25s does, and it opens memory-mapped."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mmsearch.search.keyword import KeywordIndex, tokenize

WORDS = [
    "salmon",
    "chef",
    "kitchen",
    "river",
    "bridge",
    "engine",
    "violin",
    "harbor",
    "market",
    "winter",
    "garden",
    "candle",
    "ladder",
]


@pytest.fixture(scope="module")
def corpus() -> tuple[list[int], list[str]]:
    rng = random.Random(4)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(3_000)]
    return [10 * i + 7 for i in range(len(texts))], texts


@pytest.mark.parametrize("query", ["salmon", "chef salmon", "the river bridge at winter", "salmon salmon harbor"])
def test_scores_and_order_match_bm25s(corpus: tuple[list[int], list[str]], query: str) -> None:
    ids, texts = corpus
    index = KeywordIndex.build(ids, texts)
    got = index.search(query, 50)
    docs, scores = index.retriever.retrieve([tokenize([query])[0]], k=len(ids), show_progress=False)
    want = {ids[d]: float(s) for d, s in zip(docs[0], scores[0], strict=True) if s > 0}
    assert len(got) == 50
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    for segment, score in got:
        assert score == pytest.approx(want[segment], rel=1e-5)
    best_others = sorted(want.values(), reverse=True)[50:51]
    assert not best_others or got[-1][1] >= best_others[0] - 1e-5  # nothing better was left out
    ties = [(s, i) for i, s in got]
    assert ties == sorted(ties, key=lambda t: (-t[0], t[1]))  # equal scores: the earlier segment first


def test_words_the_index_lacks_find_nothing(corpus: tuple[list[int], list[str]]) -> None:
    index = KeywordIndex.build(*corpus)
    assert index.search("zeppelin", 10) == []
    assert index.search("the and of", 10) == []  # stop words only
    assert KeywordIndex.build([], []).search("salmon", 10) == []


def test_a_saved_index_opens_memory_mapped_and_answers_the_same(
    corpus: tuple[list[int], list[str]], tmp_path: Path
) -> None:
    built = KeywordIndex.build(*corpus)
    built.save(tmp_path)
    opened = KeywordIndex.load(tmp_path)
    assert isinstance(opened.retriever.scores["data"], np.memmap)
    assert isinstance(opened.segment_ids, np.memmap)
    assert opened.search("chef kitchen", 20) == built.search("chef kitchen", 20)
