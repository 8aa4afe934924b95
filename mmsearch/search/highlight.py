"""Honest highlighting: the words of a result's text that the keyword channel matched, by BM25's own tokenizer
(the same stop words and Snowball stemming), so "Foxes" in a text lights up for the query "fox" and "the" never
does. A moment the keyword channel did not find gets none: it was found by meaning, and the page says so."""

from __future__ import annotations

import re

from ..types import Moment
from .keyword import tokenize

KEYWORD_CHANNEL = "keyword"
_WORD = re.compile(r"\w+")


def matched_words(query: str | None, moment: Moment) -> list[str]:
    """The distinct words of `moment.text`, as written there, whose stems are stems of the query's words."""
    if not query or not moment.text or KEYWORD_CHANNEL not in moment.channels:
        return []
    wanted = set(tokenize([query])[0])
    found: dict[str, None] = {}
    for word in _WORD.findall(moment.text):
        stems = tokenize([word])[0]
        if stems and stems[0] in wanted:
            found.setdefault(word, None)
    return list(found)
