"""Shots, keyword search, fusion and --like end to end on generated media with known cuts and speech.

One video: red 0-2 s | testsrc 2-4.48 s | blue 4.48-6 s | mandelbrot 6-22 s (a long shot), with two sentences
spoken at 0.5 s and 12.0 s; a byte-identical copy is indexed too, so query by example has a true answer
outside the example itself. Indexed once with the test embedder and real Whisper tiny.en.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.search.fusion import RRF_K
from mmsearch.search.searcher import Query, Searcher
from mmsearch.search.shots import LONG_SHOT_SECONDS
from mmsearch.testing.media import Shot, Utterance, VideoTruth, extract_frame, make_video

pytestmark = pytest.mark.slow
runner = CliRunner()
FRAME = 1 / 25  # the generated video's frame duration: cut times must be found within one frame
CHEF = "the chef sliced fresh salmon with a knife"
DOLPHIN = "a dolphin leaped through the ocean waves"


@pytest.fixture(scope="module")
def indexed(
    tmp_path_factory: pytest.TempPathFactory, media_tools: None, asr_model_dir: Path
) -> tuple[VideoTruth, Path]:
    root = tmp_path_factory.mktemp("retrieval")
    media = root / "media"
    media.mkdir()
    shots = [Shot("red", 2), Shot("testsrc", 2.48), Shot("blue", 1.52), Shot("mandelbrot", 16)]
    truth = make_video(media / "cuts.mp4", shots, [Utterance(CHEF, 0.5), Utterance(DOLPHIN, 12.0)])
    shutil.copy(truth.path, media / "copy.mp4")
    index = root / "index"
    summary = run_ingest(
        IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=AsrOptions(model=str(asr_model_dir)))
    )
    assert summary.failed == [] and summary.files == 2 and summary.times.shots > 0
    return truth, index


def search(index: Path, query: Query) -> list:
    searcher = Searcher.open(index)
    try:
        return searcher.search(query)
    finally:
        searcher.close()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_detected_shots_match_the_cuts(indexed: tuple[VideoTruth, Path]) -> None:
    truth, index = indexed
    searcher = Searcher.open(index)
    try:
        by_file = searcher.catalog.shots_of([1, 2])
    finally:
        searcher.close()
    assert len(by_file) == 2 and by_file[1] == by_file[2]  # the copy has the same shots (detected or copied)
    shots = by_file[1]
    assert len(shots) == len(truth.shots)
    for (start, end), span in zip(shots, truth.shots, strict=True):
        assert abs(start - span.start) <= FRAME and abs(end - span.end) <= FRAME


@pytest.mark.parametrize(("t", "shot"), [(1.0, 0), (3.0, 1), (5.0, 2)])
def test_frame_query_returns_exactly_its_shot(
    indexed: tuple[VideoTruth, Path], tmp_path: Path, t: float, shot: int
) -> None:
    truth, index = indexed
    frame = extract_frame(truth.path, t, tmp_path / "q.png")
    top = search(index, Query(image=frame, modality="video", top_k=3))[0]
    assert top.kind.value == "frame" and top.score > 0.99
    assert abs(top.start - truth.shots[shot].start) <= FRAME and abs(top.end - truth.shots[shot].end) <= FRAME


def test_frame_in_long_shot_returns_a_window_around_it(indexed: tuple[VideoTruth, Path], tmp_path: Path) -> None:
    truth, index = indexed
    frame = extract_frame(truth.path, 15.0, tmp_path / "q.png")
    top = search(index, Query(image=frame, modality="video", top_k=1))[0]
    long_shot = truth.shots[-1]
    assert long_shot.end - long_shot.start > LONG_SHOT_SECONDS
    assert long_shot.start <= top.start <= 15.0 < top.end <= long_shot.end
    assert top.end - top.start < LONG_SHOT_SECONDS


# Stemming is what matches "leaping waves" to the spoken "leaped ... waves".
@pytest.mark.parametrize(("words", "spoken", "heard"), [("salmon knife", 0, "salmon"), ("leaping waves", 1, "leaped")])
def test_keyword_query_finds_spoken_sentence_at_its_time(
    indexed: tuple[VideoTruth, Path], words: str, spoken: int, heard: str
) -> None:
    truth, index = indexed
    top = search(index, Query(text=words, channels=("keyword",), top_k=1))[0]
    said = truth.utterances[spoken]
    assert top.kind.value == "speech" and top.path.endswith(("cuts.mp4", "copy.mp4"))
    assert abs(top.start - said.start) < 1.0 and abs(top.end - said.end) < 1.0
    assert top.text is not None and heard in top.text.lower()


def test_default_query_fuses_channels_and_explain_matches_rrf(indexed: tuple[VideoTruth, Path]) -> None:
    _, index = indexed
    args = ("query", "salmon knife", "--index", str(index), "--explain", "--json", "-k", "5", "--fusion", "rrf")
    code, out, err = cli(*args)
    assert code == 0, err
    results = json.loads(out)["results"]
    top = results[0]
    assert top["kind"] == "speech" and set(top["channels"]) == {"speech", "keyword"}
    assert top["score"] == pytest.approx(sum(1 / (RRF_K + c["rank"]) for c in top["channels"].values()))
    assert {"visual"} in [set(r["channels"]) for r in results]  # text -> video is fused in too
    for r in results:
        assert all(isinstance(c["rank"], int) and isinstance(c["score"], float) for c in r["channels"].values())


def test_weighted_fusion_and_weights(indexed: tuple[VideoTruth, Path]) -> None:
    _, index = indexed
    args = ["query", "salmon knife", "--index", str(index), "--json", "--explain", "--fusion", "weighted"]
    code, out, err = cli(*args, "--weight", "keyword=2", "--weight", "visual=0")
    assert code == 0, err
    results = json.loads(out)["results"]
    assert results[0]["kind"] == "speech" and results[0]["score"] <= 3.0  # at most 1*1 + 2*1
    assert all(r["score"] == 0.0 for r in results if set(r["channels"]) == {"visual"})


def test_explain_table_has_channels_column(indexed: tuple[VideoTruth, Path]) -> None:
    _, index = indexed
    code, out, err = cli("query", "salmon knife", "--index", str(index), "--explain", "--channel", "keyword", "-k", "1")
    assert code == 0, err
    assert "channels" in out and "keyword#1" in out


def test_json_without_explain_keeps_the_contract(indexed: tuple[VideoTruth, Path]) -> None:
    _, index = indexed
    code, out, _ = cli("query", "salmon knife", "--index", str(index), "--json", "--channel", "speech")
    assert code == 0
    assert all(
        set(r) == {"path", "file_id", "kind", "start", "end", "score", "text", "evidence"}
        for r in json.loads(out)["results"]
    )


def test_like_finds_the_copy_and_excludes_itself(indexed: tuple[VideoTruth, Path]) -> None:
    truth, index = indexed
    code, out, err = cli("query", "--like", f"{truth.path}@12-14", "--index", str(index), "--json", "--explain")
    assert code == 0, err
    data = json.loads(out)
    assert data["query"].startswith("like:") and data["query"].endswith("cuts.mp4@12-14")
    results = data["results"]
    for r in results:
        if r["path"] == str(truth.path) and r["start"] is not None:
            assert r["end"] <= 12.0 or r["start"] >= 14.0, r  # the example itself is left out
    top = results[0]
    assert top["path"].endswith("copy.mp4") and top["start"] < 14.0 and top["end"] > 12.0
    assert len(top["channels"]) >= 2


def test_like_whole_file_excludes_the_whole_file(indexed: tuple[VideoTruth, Path]) -> None:
    truth, index = indexed
    code, out, err = cli("query", "--like", str(truth.path), "--index", str(index), "--json", "-k", "5")
    assert code == 0, err
    assert all(r["path"].endswith("copy.mp4") for r in json.loads(out)["results"])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["x", "--channel", "smell"], "unknown channel"),
        (["x", "--weight", "keyword"], "--weight"),
        (["x", "--weight", "keyword=lots"], "not a number"),
        (["x", "--fusion", "borda"], "--fusion"),
        (["--like", "cuts.mp4@9-3"], "END must be greater"),
        (["--like", "cuts.mp4@soon"], "not START-END"),
        (["x", "--like", "cuts.mp4"], "only one of"),
        (["x", "--kind", "image", "--channel", "speech"], "searches nothing"),
        (["x", "--kind", "smell"], "--kind"),
    ],
)
def test_query_flag_errors_exit_2(indexed: tuple[VideoTruth, Path], args: list[str], needle: str) -> None:
    code, _, err = cli("query", *args, "--index", str(indexed[1]))
    assert code == 2 and needle in err, err


def test_like_of_unindexed_file_or_empty_range_exit_2(indexed: tuple[VideoTruth, Path], tmp_path: Path) -> None:
    truth, index = indexed
    stranger = tmp_path / "stranger.mp4"
    shutil.copy(truth.path, stranger)
    code, _, err = cli("query", "--like", str(stranger), "--index", str(index))
    assert code == 2 and "not in the index" in err
    code, _, err = cli("query", "--like", f"{truth.path}@100-200", "--index", str(index))
    assert code == 2 and "no indexed frames or speech between 100 s and 200 s" in err


def test_keyword_channel_needs_words(indexed: tuple[VideoTruth, Path], tmp_path: Path) -> None:
    truth, index = indexed
    frame = extract_frame(truth.path, 1.0, tmp_path / "q.png")
    code, _, err = cli("query", "--image", str(frame), "--channel", "keyword", "--index", str(index))
    assert code == 2 and "needs words" in err
    args = ("query", "--image", str(frame), "--modality", "audio", "--fusion", "rrf", "--index", str(index), "--json")
    code, out, err = cli(*args)
    assert code == 0, err  # image -> audio runs through the speech channel (calibrated fusion drops its noise)
    assert {r["kind"] for r in json.loads(out)["results"]} == {"speech"}


def test_index_from_before_shots_still_answers(indexed: tuple[VideoTruth, Path], tmp_path: Path) -> None:
    """An index written before migration 2, opened read-only, falls back to runs of touching frames."""
    import sqlite3

    truth, index = indexed
    old = tmp_path / "old"
    shutil.copytree(index, old)
    with sqlite3.connect(old / "catalog.sqlite") as conn:
        conn.execute("DROP TABLE shots")
        conn.execute("DELETE FROM schema_migrations WHERE version >= 2")
    frame = extract_frame(truth.path, 3.0, tmp_path / "q.png")
    top = search(old, Query(image=frame, modality="video", top_k=1))[0]
    assert top.start is not None and top.end is not None and top.start <= 3.0 < top.end


def test_copies_reuse_shots_without_detection(tmp_path: Path, media_tools: None) -> None:
    media = tmp_path / "m"
    media.mkdir()
    make_video(media / "a.mp4", [Shot("red", 1), Shot("blue", 1)], audio=False)
    options = IngestOptions(paths=(media,), index_dir=tmp_path / "i", model="test:hash", asr=None)
    run_ingest(options)
    shutil.copy(media / "a.mp4", media / "b.mp4")
    again = run_ingest(options)
    assert again.embedded == 0 and again.times.shots == 0.0  # known content: segments, vectors, shots copied
    searcher = Searcher.open(tmp_path / "i")
    try:
        by_file = searcher.catalog.shots_of([1, 2])
    finally:
        searcher.close()
    assert by_file[1] == by_file[2] and [round(a, 2) for a, _ in by_file[1]] == [0.0, 1.0]
