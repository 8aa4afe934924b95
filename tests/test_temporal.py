"""Temporal queries (`A --then B`): chaining rules on hand-made moments, then generated videos with espeak-ng
speech indexed with real Whisper tiny.en and the test embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.errors import UsageError
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.search.searcher import Query
from mmsearch.search.temporal import chain_moments
from mmsearch.testing.media import Shot, Utterance, make_video
from mmsearch.types import Moment, SegmentKind

runner = CliRunner()
LIGHTHOUSE = "a lighthouse guided fishing boats at midnight"
ASTRONAUT = "the astronaut slept inside the space station"


def moment(path: str, start: float, end: float, score: float) -> Moment:
    return Moment(path, SegmentKind.SPEECH, start, end, score, f"{path}@{start:g}", file_id=len(path))


def test_chain_needs_each_part_after_the_one_before_in_one_file_within_the_window() -> None:
    a = [moment("one", 5, 7, 3.0), moment("three", 20, 22, 3.0), moment("two", 40, 41, 1.5)]
    b = [moment("one", 20, 22, 2.0), moment("two", 20, 22, 4.0), moment("three", 5, 7, 2.0)]
    chains = chain_moments([a, b], within=60, limit=10)
    assert [(c.path, c.file_id, c.start, c.end, c.score) for c in chains] == [("one", 3, 5, 22, 5.0)]
    assert [(p.start, p.end) for p in chains[0].parts] == [(5, 7), (20, 22)]
    assert chains[0].to_json()["parts"] == [a[0].to_json(), b[0].to_json()]
    assert chain_moments([a, b], within=12, limit=10) == []  # B starts 13 s after A ends


def test_one_moment_never_answers_two_parts_and_overlapping_chains_keep_the_best() -> None:
    same = moment("v", 5, 7, 3.0)
    assert chain_moments([[same], [same]], within=60, limit=5) == []
    a = [moment("v", 0, 2, 1.0), moment("v", 1, 3, 2.0)]
    b = [moment("v", 4, 6, 1.0), moment("v", 50, 52, 0.5)]
    c = [moment("v", 8, 9, 1.0)]
    chains = chain_moments([a, b, c], within=60, limit=5)
    # (1-3, 4-6, 8-9) scores 4.0; (0-2, 4-6, 8-9) overlaps it; 50-52 is not followed by C.
    assert [(ch.start, ch.end, ch.score) for ch in chains] == [(1, 9, 4.0)]
    assert len(chains[0].parts) == 3


def test_then_validation() -> None:
    with pytest.raises(UsageError, match="--then"):
        Query(text="a", then=(" ",)).validate()
    with pytest.raises(UsageError, match="--within"):
        Query(text="a", then=("b",), within=0).validate()
    assert Query(text="a", then=("b", "c")).label == "a --then b --then c"


@pytest.fixture(scope="module")
def three_videos(tmp_path_factory: pytest.TempPathFactory, media_tools: None, asr_model_dir: Path) -> Path:
    """one.mp4: LIGHTHOUSE at 5 s, ASTRONAUT at 20 s; two.mp4: only ASTRONAUT at 20 s; three.mp4: the reverse."""
    root = tmp_path_factory.mktemp("temporal")
    media = root / "media"
    media.mkdir()
    shots = [Shot("red", 12), Shot("blue", 14)]
    make_video(media / "one.mp4", shots, [Utterance(LIGHTHOUSE, 5.0), Utterance(ASTRONAUT, 20.0)])
    make_video(media / "two.mp4", shots, [Utterance(ASTRONAUT, 20.0)])
    make_video(media / "three.mp4", shots, [Utterance(ASTRONAUT, 5.0), Utterance(LIGHTHOUSE, 20.0)])
    index = root / "index"
    options = IngestOptions(
        paths=(media,), index_dir=index, model="test:hash", asr=AsrOptions(model=str(asr_model_dir))
    )
    assert run_ingest(options).failed == []
    return index


def query(index: Path, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["query", *args, "--index", str(index), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_only_the_video_where_a_comes_before_b_answers(three_videos: Path) -> None:
    data = query(three_videos, "lighthouse fishing boats", "--then", "astronaut space station", "--explain")
    results = data["results"]
    assert isinstance(results, list) and len(results) == 1
    top = results[0]
    assert Path(top["path"]).name == "one.mp4"
    a, b = top["parts"]
    assert "fishing" in a["text"].lower() and "space" in b["text"].lower()
    assert abs(a["start"] - 5.0) < 1.0 and abs(b["start"] - 20.0) < 1.0
    assert top["start"] == a["start"] and top["end"] == b["end"]
    assert top["score"] == pytest.approx(a["score"] + b["score"])
    assert "evidence" in next(iter(a["channels"].values()))
    # Each part alone is found in two videos (B in all three): the order is what singles out one.mp4.
    alone = query(three_videos, "lighthouse fishing boats", "--kind", "speech")["results"]
    assert isinstance(alone, list) and {Path(r["path"]).name for r in alone} == {"one.mp4", "three.mp4"}


@pytest.mark.slow
def test_reversed_order_and_a_short_window(three_videos: Path) -> None:
    reverse = query(three_videos, "astronaut space station", "--then", "lighthouse fishing boats")["results"]
    assert isinstance(reverse, list) and [Path(r["path"]).name for r in reverse] == ["three.mp4"]
    # one.mp4's B starts about 13 s after A ends.
    assert (
        query(three_videos, "lighthouse fishing boats", "--then", "astronaut space station", "--within", "5")["results"]
        == []
    )


@pytest.mark.slow
def test_explain_table_shows_each_part(three_videos: Path) -> None:
    args = ["query", "lighthouse fishing boats", "--then", "astronaut space station", "--explain"]
    result = runner.invoke(app, [*args, "--index", str(three_videos)])
    assert result.exit_code == 0, result.output
    assert "one.mp4" in result.stdout and "part 1 00:0" in result.stdout and "part 2 00:2" in result.stdout
    assert "three.mp4" not in result.stdout and "two.mp4" not in result.stdout
