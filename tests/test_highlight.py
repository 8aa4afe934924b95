"""Honest highlighting: only the words the keyword channel matched, by BM25's own stop words and stemming."""

from __future__ import annotations

from mmsearch.search.highlight import matched_words
from mmsearch.types import ChannelScore, Moment, SegmentKind

TEXT = "The red Foxes jumped over the fence, and the fox ran."


def _moment(*channels: str) -> Moment:
    found = {name: ChannelScore(1, 1.0, None) for name in channels}
    return Moment("talk.mp4", SegmentKind.SPEECH, 1.0, 3.0, 0.5, TEXT, channels=found)


def test_stems_match_and_stop_words_never_do() -> None:
    assert matched_words("the fox jumping", _moment("keyword", "speech")) == ["Foxes", "jumped", "fox"]


def test_a_moment_found_by_meaning_marks_nothing() -> None:
    assert matched_words("fox", _moment("speech", "visual")) == []
    assert matched_words(None, _moment("keyword")) == []
    assert matched_words("the and over", _moment("keyword")) == []  # stop words only
