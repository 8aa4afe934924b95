"""Stereo with one voice per channel: each channel is transcribed on its own, each sentence is found, segments
keep their `channel`; a stereo mix of one voice is transcribed once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.ingest.audio import channels_differ
from mmsearch.testing.tracks import LEFT, RIGHT, make_stereo

runner = CliRunner()


def test_correlation_decides_when_channels_differ() -> None:
    rng = np.random.default_rng(0)
    voice = rng.standard_normal(16_000).astype(np.float32)
    other = rng.standard_normal(16_000).astype(np.float32)
    assert channels_differ(np.stack([voice, other]))
    assert not channels_differ(np.stack([voice, 0.8 * voice + 0.1 * other]))  # one scene mixed to stereo
    assert not channels_differ(np.stack([voice, np.zeros_like(voice)]))  # a silent channel: nothing to split
    assert not channels_differ(voice[None, :])


@pytest.mark.slow
def test_each_channels_sentence_is_found(tmp_path: Path, asr_model_dir: Path, media_tools: None) -> None:
    path = make_stereo(tmp_path / "media" / "call.wav")
    index = tmp_path / "index"
    args = ["index", str(path), "--index", str(index), "--model", "test:hash", "--asr-model", str(asr_model_dir)]
    assert runner.invoke(app, args).exit_code == 0
    shown = json.loads(runner.invoke(app, ["show", str(path), "--index", str(index), "--json"]).output)
    by_channel = {row["channel"]: row["text"].lower() for row in shown["speech"]}
    assert set(by_channel) == {0, 1}
    assert "balloon" in by_channel[0] and "harbo" in by_channel[0]
    assert "invoice" in by_channel[1] and "friday" in by_channel[1]
    assert shown["language"] == "en"
    for utterance, channel in ((LEFT, 0), (RIGHT, 1)):
        query = " ".join(utterance.text.split()[1:4])
        result = json.loads(runner.invoke(app, ["query", query, "--index", str(index), "--json"]).output)
        assert result["results"], query
        pieces = result["results"][0]["evidence"]
        assert any(p["kind"] == "speech" and p["start"] < 1.5 for p in pieces), (query, pieces)
        assert any(p["kind"] == "speech" and p["channel"] == channel for p in pieces), (query, pieces)
        assert any(w in by_channel[channel] for w in query.lower().split())
