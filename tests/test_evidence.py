"""A moment that merges speech and on-screen text keeps each piece, with its own time, in JSON and the CLI."""

from __future__ import annotations

from rich.console import Console

from mmsearch.cli.ui import moments_table
from mmsearch.search.moments import group_units
from mmsearch.search.results import moment_json
from mmsearch.types import ChannelScore, SegmentHit, SegmentKind

OCR = SegmentHit(1, "/m/news.mp4", SegmentKind.OCR, 12.0, 15.0, 0.9, "PLATFORM SEVEN", file_id=1)
SPEECH = SegmentHit(2, "/m/news.mp4", SegmentKind.SPEECH, 14.0, 18.5, 0.6, "the train leaves at noon", 1, 1)
FRAME = SegmentHit(3, "/m/news.mp4", SegmentKind.FRAME, 13.0, 14.0, 0.4, None, file_id=1)


def _moment():  # type: ignore[no-untyped-def]
    units = [(h, {"keyword": ChannelScore(1, h.score)}) for h in (OCR, SPEECH, FRAME)]
    [moment] = group_units(units)
    return moment


def test_merged_moment_keeps_each_piece_with_its_time() -> None:
    moment = _moment()
    data = moment_json(moment)
    assert (data["kind"], data["start"], data["end"]) == ("ocr", 12.0, 18.5)
    assert data["text"] == "PLATFORM SEVEN"  # the on-screen words that were searched for, not the transcript
    assert data["evidence"] == [
        {"kind": "ocr", "start": 12.0, "end": 15.0, "text": "PLATFORM SEVEN", "channel": None, "score": 0.9},
        {"kind": "speech", "start": 14.0, "end": 18.5, "text": "the train leaves at noon", "channel": 1, "score": 0.6},
    ]


def test_frames_only_moment_lists_its_best_frame() -> None:
    [moment] = group_units([(FRAME, {})])
    assert [p.kind for p in moment.evidence] == [SegmentKind.FRAME]


def test_cli_table_shows_screen_text_and_speech_apart() -> None:
    console = Console(width=160, record=True)
    console.print(moments_table("platform", [_moment()]))
    out = console.export_text()
    assert "ocr 00:12–00:15: PLATFORM SEVEN" in out
    assert "speech R 00:14–00:18: the train leaves at noon" in out
