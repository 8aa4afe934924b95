"""`--modality` says in which files to look (video = frames, speech and on-screen text of video files);
`--kind` is the segment-kind filter. Golden media: shots.mp4 (no audio), talk.mp4 (SPOKEN), speech.wav
(AUDIO_SPOKEN), still.png; indexed with the test embedder and real Whisper tiny.en."""

from __future__ import annotations

from pathlib import Path

import pytest
from media import AUDIO_SPOKEN, SPOKEN, GoldenMedia
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.search.searcher import Query, Searcher
from mmsearch.testing.media import extract_frame
from mmsearch.types import Moment

pytestmark = pytest.mark.slow
runner = CliRunner()


def search(index: Path, **kwargs: object) -> list[Moment]:
    searcher = Searcher.open(index)
    try:
        return searcher.search(Query(**kwargs))  # type: ignore[arg-type]
    finally:
        searcher.close()


def test_video_modality_finds_words_said_in_a_video(golden: GoldenMedia, golden_index: Path) -> None:
    top = search(golden_index, text=SPOKEN, modality="video", top_k=3)[0]
    assert top.path == str(golden.talk) and top.kind.value == "speech"
    assert top.text is not None and "fox" in top.text.lower()


def test_video_modality_leaves_out_audio_files_and_images(golden: GoldenMedia, golden_index: Path) -> None:
    for text in (SPOKEN, AUDIO_SPOKEN):
        moments = search(golden_index, text=text, modality="video", top_k=20, fusion="rrf")
        assert moments and {m.path for m in moments} <= {str(golden.talk), str(golden.shots)}
    heard = search(golden_index, text=AUDIO_SPOKEN, modality="audio", top_k=1)
    assert heard[0].path == str(golden.speech)
    still = search(golden_index, image=golden.still, modality="image", top_k=20, fusion="rrf")
    assert {m.path for m in still} == {str(golden.still)}


def test_kind_filters_segment_kinds(golden: GoldenMedia, golden_index: Path) -> None:
    for kinds, expected in ((("frame",), {"frame"}), (("speech",), {"speech"}), (("image",), {"image"})):
        moments = search(golden_index, image=golden.still, kinds=kinds, top_k=20, fusion="rrf")
        assert moments and {m.kind.value for m in moments} == expected
    said_in_videos = search(golden_index, text=SPOKEN, modality="video", kinds=("speech",), top_k=20, fusion="rrf")
    assert {m.path for m in said_in_videos} == {str(golden.talk)}


def test_kind_flag_and_explain_show_evidence(golden: GoldenMedia, golden_index: Path) -> None:
    result = runner.invoke(
        app, ["query", SPOKEN, "--kind", "speech", "--modality", "video", "--explain", "--index", str(golden_index)]
    )
    assert result.exit_code == 0, result.output
    assert "talk.mp4" in result.stdout and "speech#1" in result.stdout and "e=" in result.stdout
    bad = runner.invoke(app, ["query", SPOKEN, "--kind", "smell", "--index", str(golden_index)])
    assert bad.exit_code == 2 and "--kind must be one of frame, speech, image" in bad.stderr


def test_image_query_keeps_speech_noise_out_where_rrf_lets_it_in(
    golden: GoldenMedia, golden_index: Path, tmp_path: Path
) -> None:
    """The issue's example: an image query whose speech channel has nothing relevant (test:hash cosines ~0)."""
    frame = extract_frame(golden.shots, 3.0, tmp_path / "q.png")  # the testsrc shot, 2-4 s
    calibrated = search(golden_index, image=frame, top_k=10)
    assert calibrated[0].path == str(golden.shots) and calibrated[0].kind.value == "frame"
    assert all(m.kind.value != "speech" for m in calibrated)
    assert all("speech" not in m.channels for m in calibrated)
    assert any(m.kind.value == "speech" for m in search(golden_index, image=frame, top_k=10, fusion="rrf"))
    assert list(golden_index.glob("calibration-*.json"))  # measured once, cached beside the catalog
