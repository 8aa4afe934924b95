"""Transcribe stage: Whisper speech segments with start/end times, via faster-whisper or openai-whisper.

`--asr-model` takes a model name (downloaded by the backend when online) or a local path: a CTranslate2
directory for faster-whisper, a `.pt` checkpoint for openai-whisper.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError, WeightsUnavailable
from ..types import AudioClip, SpeechSegment

log = logging.getLogger(__name__)

DEFAULT_ASR_BACKEND = "faster-whisper"
DEFAULT_ASR_MODEL = "base"
# Below this RMS (about -50 dBFS) a track is silence; Whisper hallucinates text ("Thank you.") on silence.
SILENCE_RMS = 0.003


# `--asr`: auto skips Whisper for a file whose subtitles in its spoken language cover it (ingest/subtitles.py),
# always transcribes every file with audio; `never` is no AsrOptions at all (`--no-asr`).
ASR_WHEN = ("auto", "always")
# Recorded as a file's ASR when its subtitles stood in for Whisper (`--asr auto`).
SUBTITLES_LABEL = "subtitles"


@dataclass(frozen=True)
class AsrOptions:
    backend: str = DEFAULT_ASR_BACKEND
    model: str = DEFAULT_ASR_MODEL
    language: str | None = None  # forced spoken language (ISO 639-1); None: Whisper detects it per window
    device: str = "auto"
    when: str = "auto"

    def __post_init__(self) -> None:
        if self.when not in ASR_WHEN:
            raise UsageError(f"--asr {self.when!r} is not a choice", hint="choose auto, always or never")

    @property
    def label(self) -> str:
        """Recorded per file in the catalog: which ASR produced its transcript."""
        return f"{self.backend}:{self.model}"


class Transcriber(Protocol):
    options: AsrOptions

    def transcribe(self, clip: AudioClip, stop: threading.Event | None = None) -> list[SpeechSegment]: ...


def is_silent(samples: np.ndarray) -> bool:
    return len(samples) == 0 or float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) < SILENCE_RMS


def _hint(options: AsrOptions) -> str:
    return (
        f"`{options.model}` could not be loaded by {options.backend}; when offline pass a local model with "
        "--asr-model /path/to/ctranslate2-dir (faster-whisper) or /path/to/model.pt (openai-whisper), "
        "or skip speech with --no-asr"
    )


class FasterWhisperTranscriber:
    def __init__(self, options: AsrOptions) -> None:
        from faster_whisper import WhisperModel

        from ..models.hub import hub_reachable, resolve_device

        self.options = options
        device = resolve_device(options.device, allow_mps=False)
        compute_type = "float16" if device == "cuda" else "int8"
        local = Path(options.model).expanduser()
        try:
            if local.exists():
                self._model = WhisperModel(str(local), device=device, compute_type=compute_type)
            else:
                self._model = WhisperModel(
                    options.model,
                    device=device,
                    compute_type=compute_type,
                    local_files_only=not hub_reachable(),
                )
        except Exception as e:  # HF hub, CTranslate2 and OS errors all mean "this model is not usable here"
            raise WeightsUnavailable(f"cannot load ASR model {options.model!r}: {e}", hint=_hint(options)) from e

    def transcribe(self, clip: AudioClip, stop: threading.Event | None = None) -> list[SpeechSegment]:
        """`stop` is checked between Whisper's 30 s chunks, so Ctrl-C does not wait for a whole window."""
        if is_silent(clip.samples):
            return []
        # VAD drops silent stretches before decoding; faster-whisper maps times back to the original audio.
        segments, info = self._model.transcribe(
            clip.samples, language=self.options.language, vad_filter=True, beam_size=5, word_timestamps=True
        )
        out: list[SpeechSegment] = []
        for seg in segments:
            if stop is not None and stop.is_set():
                break
            out.extend(_split_on_pauses(seg.start, seg.end, seg.text, seg.words or []))
        language = self.options.language or getattr(info, "language", None)
        return [replace(s, language=language) for s in out if s.text]


class OpenAIWhisperTranscriber:
    def __init__(self, options: AsrOptions) -> None:
        import whisper

        from ..models.hub import resolve_device

        self.options = options
        self._device = resolve_device(options.device, allow_mps=False)
        local = Path(options.model).expanduser()
        name = str(local) if local.exists() else options.model
        if not local.exists() and name not in whisper.available_models():
            raise WeightsUnavailable(
                f"no openai-whisper model {name!r}", hint=f"known: {', '.join(whisper.available_models())}"
            )
        try:
            self._model = whisper.load_model(name, device=self._device)
        except Exception as e:  # download (urllib) and checkpoint errors
            raise WeightsUnavailable(f"cannot load ASR model {name!r}: {e}", hint=_hint(options)) from e

    def transcribe(self, clip: AudioClip, stop: threading.Event | None = None) -> list[SpeechSegment]:
        if is_silent(clip.samples):
            return []
        result: dict[str, Any] = self._model.transcribe(
            clip.samples, language=self.options.language, fp16=self._device == "cuda", verbose=None
        )
        language = self.options.language or result.get("language")
        return [
            replace(_segment(s["start"], s["end"], s["text"]), language=language)
            for s in result["segments"]
            if s["text"].strip()
        ]


# VAD glues speech chunks together before decoding, so one Whisper segment can span a long silence (two
# sentences 9 s apart came back as one 0-14 s segment); word times show the gap, and we cut there.
PAUSE_SPLIT_SECONDS = 1.0


def _split_on_pauses(start: float, end: float, text: str, words: Sequence[Any]) -> list[SpeechSegment]:
    """One segment per run of words without a pause longer than PAUSE_SPLIT_SECONDS."""
    if not words:
        return [_segment(start, end, text)]
    runs: list[list[Any]] = [[words[0]]]
    for prev, word in zip(words, words[1:], strict=False):
        if word.start - prev.end > PAUSE_SPLIT_SECONDS:
            runs.append([])
        runs[-1].append(word)
    if len(runs) == 1:
        return [_segment(start, end, text)]
    return [_segment(run[0].start, run[-1].end, "".join(w.word for w in run)) for run in runs]


def _segment(start: float, end: float, text: str) -> SpeechSegment:
    return SpeechSegment(round(float(start), 3), round(float(max(end, start)), 3), text.strip())


BACKENDS: dict[str, Callable[[AsrOptions], Transcriber]] = {
    "faster-whisper": FasterWhisperTranscriber,
    "openai-whisper": OpenAIWhisperTranscriber,
}


def load_transcriber(options: AsrOptions) -> Transcriber:
    try:
        factory = BACKENDS[options.backend]
    except KeyError as e:
        raise UsageError(
            f"unknown ASR backend {options.backend!r}", hint=f"choose one of: {', '.join(BACKENDS)}"
        ) from e
    return factory(options)
