"""ASR backends: real faster-whisper on espeak-ng speech; the openai-whisper adapter with its model stubbed
(no openai-whisper weights exist offline here; the adapter's mapping and error paths are what we own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmsearch.errors import UsageError, WeightsUnavailable
from mmsearch.ingest.transcribe import AsrOptions, OpenAIWhisperTranscriber, is_silent, load_transcriber
from mmsearch.types import AudioClip, MediaFile, MediaKind

RATE = 16_000


def clip(samples: np.ndarray) -> AudioClip:
    media = MediaFile(Path("x.wav"), MediaKind.AUDIO, 1, 1, True, len(samples) / RATE)
    return AudioClip(media, samples.astype(np.float32), RATE)


def test_silence_detection() -> None:
    assert is_silent(np.zeros(RATE, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    assert not is_silent(0.1 * np.sin(np.linspace(0, 2000, RATE)).astype(np.float32))


def test_unknown_backend_is_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown ASR backend"):
        load_transcriber(AsrOptions(backend="kaldi"))


@pytest.mark.slow
def test_faster_whisper_real_transcription_with_times(asr_model_dir: Path, tmp_path: Path, media_tools: None) -> None:
    from mmsearch.ingest.decode import load_audio
    from mmsearch.ingest.discover import probe
    from mmsearch.testing.media import Utterance, make_audio

    truth = make_audio(tmp_path / "s.wav", [Utterance("the green bicycle leans against the old wall", 1.5)])
    transcriber = load_transcriber(AsrOptions(model=str(asr_model_dir)))
    audio = load_audio(probe(truth.path))
    assert audio is not None
    segments = transcriber.transcribe(audio)
    text = " ".join(s.text.lower() for s in segments)
    assert "bicycle" in text and "wall" in text
    assert abs(segments[0].start - 1.5) < 0.8
    assert abs(segments[-1].end - truth.utterances[0].end) < 1.0
    assert transcriber.transcribe(clip(np.zeros(RATE * 2))) == []  # silence never reaches Whisper


def test_faster_whisper_missing_local_dir_is_weights_unavailable(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailable) as err:
        load_transcriber(AsrOptions(model="no-such-model-name"))
    assert "--asr-model /path/to/ctranslate2-dir" in (err.value.hint or "")


class _StubWhisperModel:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def transcribe(self, samples: np.ndarray, **kw: Any) -> dict[str, Any]:
        self.calls.append({"n": len(samples), **kw})
        return {
            "segments": [
                {"start": 0.5, "end": 1.25, "text": " hello there "},
                {"start": 1.25, "end": 1.0, "text": "  "},  # empty text is dropped
                {"start": 2.0, "end": 3.5, "text": "general kenobi"},
            ]
        }


def test_openai_whisper_adapter_maps_segments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import whisper

    stub = _StubWhisperModel()
    loaded: list[str] = []
    monkeypatch.setattr(whisper, "load_model", lambda name, device=None: loaded.append(name) or stub)
    ckpt = tmp_path / "tiny.pt"
    ckpt.write_bytes(b"stub")
    transcriber = load_transcriber(AsrOptions(backend="openai-whisper", model=str(ckpt), device="cpu"))
    assert isinstance(transcriber, OpenAIWhisperTranscriber) and loaded == [str(ckpt)]
    speech = clip(0.1 * np.sin(np.linspace(0, 4000, RATE * 4)))
    segments = transcriber.transcribe(speech)
    assert [(s.start, s.end, s.text) for s in segments] == [(0.5, 1.25, "hello there"), (2.0, 3.5, "general kenobi")]
    assert stub.calls[0]["fp16"] is False and stub.calls[0]["n"] == RATE * 4


def test_openai_whisper_unknown_name_and_download_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import whisper

    with pytest.raises(WeightsUnavailable, match="no openai-whisper model"):
        load_transcriber(AsrOptions(backend="openai-whisper", model="enormous"))

    def offline(name: str, device: str | None = None) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(whisper, "load_model", offline)
    with pytest.raises(WeightsUnavailable) as err:
        load_transcriber(AsrOptions(backend="openai-whisper", model="tiny.en"))
    assert "--no-asr" in (err.value.hint or "")
