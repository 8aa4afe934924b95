"""End to end on generated media with known truth: index once, then query by exact frame, by words, by modality."""

from __future__ import annotations

from pathlib import Path

import pytest
from media import AUDIO_SPOKEN, GoldenMedia

from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.search.searcher import Query, Searcher
from mmsearch.testing.media import extract_frame

pytestmark = pytest.mark.slow


def _search(index: Path, **kw: object) -> list:
    searcher = Searcher.open(index)
    try:
        return searcher.search(Query(**kw))  # type: ignore[arg-type]
    finally:
        searcher.close()


def test_catalog_holds_every_kind(golden_index: Path) -> None:
    from mmsearch.index.info import index_info

    info = index_info(golden_index)
    assert info["files"] == 4
    segs = info["segments"]
    assert isinstance(segs, dict)
    # shots.mp4 and talk.mp4 are 6 s at 1 fps: 6 frames each; one still; speech from talk.mp4 and speech.wav.
    assert segs["frame"] == 12 and segs["image"] == 1 and segs["speech"] >= 2
    assert info["vectors"] == sum(segs.values())


def test_exact_frame_finds_that_video_at_that_time(golden: GoldenMedia, golden_index: Path, tmp_path: Path) -> None:
    frame = extract_frame(golden.shots, 3.0, tmp_path / "q.png")  # inside the testsrc shot (2-4 s)
    top = _search(golden_index, image=frame, modality="video", top_k=3)[0]
    assert top.path == str(golden.shots)
    assert top.kind.value == "frame"
    assert top.start is not None and top.end is not None
    assert 2.0 <= top.start <= 3.0 < top.end <= 4.0
    assert top.score > 0.99


def test_spoken_words_found_by_audio_modality_at_the_right_time(golden: GoldenMedia, golden_index: Path) -> None:
    moments = _search(golden_index, text="red fox jumped over the wooden fence", modality="audio", top_k=2)
    top = moments[0]
    assert top.path == str(golden.talk) and top.kind.value == "speech"
    assert top.text is not None and "fox" in top.text.lower() and "fence" in top.text.lower()
    assert top.start is not None and top.end is not None
    assert abs(top.start - golden.talk_speech_start) < 1.0
    assert abs(top.end - golden.talk_speech_end) < 1.5
    assert all(m.kind.value == "speech" for m in moments)


def test_audio_only_file_is_transcribed(golden: GoldenMedia, golden_index: Path) -> None:
    top = _search(golden_index, text=AUDIO_SPOKEN, modality="audio", top_k=1)[0]
    assert top.path == str(golden.speech)
    assert top.text is not None and "whale" in top.text.lower()


def test_image_query_finds_still_image(golden: GoldenMedia, golden_index: Path) -> None:
    top = _search(golden_index, image=golden.still, modality="image", top_k=1)[0]
    assert top.path == str(golden.still) and top.start is None and top.end is None and top.score > 0.99


def test_random_open_clip_end_to_end(golden: GoldenMedia, tmp_path: Path) -> None:
    """The real open_clip code path (tiny architecture, untrained weights) through index and query."""
    index_dir = tmp_path / "idx"
    summary = run_ingest(
        IngestOptions(paths=(golden.shots, golden.still), index_dir=index_dir, model="random:mmsearch-tiny", asr=None)
    )
    assert (summary.files, summary.segments, summary.embedded, summary.failed) == (2, 7, 7, [])
    frame = extract_frame(golden.shots, 5.0, tmp_path / "q.png")  # blue shot
    top = _search(index_dir, image=frame, modality="video", top_k=1)[0]
    assert top.path == str(golden.shots) and top.score > 0.99
    assert top.start is not None and top.end is not None and top.start <= 5.0 < top.end


def test_rerun_embeds_nothing(golden: GoldenMedia, golden_index: Path, asr_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "index"
    shutil.copytree(golden_index, copy)
    summary = run_ingest(
        IngestOptions(paths=(golden.root,), index_dir=copy, model="test:hash", asr=AsrOptions(model=str(asr_model_dir)))
    )
    assert (summary.embedded, summary.new_files, summary.files, summary.unchanged_files) == (0, 0, 4, 4)
