"""CLAP (contrastive language-audio pretraining): windows of sound and text queries into one audio space.

`--audio-model PATH` loads a transformers CLAP checkpoint directory (e.g. a local copy of laion/clap-htsat-unfused)
with its processor. `random:clap-tiny` builds a small CLAP with untrained, seeded weights: the code path runs end to
end, the results are noise, and every load says so (the same loud rule as `random:` CLIP specs).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UnknownModel, WeightsUnavailable
from .clip import normalize

log = logging.getLogger(__name__)

RANDOM_PREFIX = "random:"
RANDOM_ARCHS = ("clap-tiny",)
RANDOM_SEED = 0
# Tokens of the random model's word-hash tokenizer (no tokenizer files ship without weights).
RANDOM_VOCAB = 1000
MAX_TEXT_TOKENS = 64
# CLAP's feature extractor works at 48 kHz; windows are resampled to it.
CLAP_SAMPLE_RATE = 48_000


@dataclass(frozen=True)
class AudioSpec:
    raw: str
    untrained: bool
    path: Path | None


def parse_audio_spec(raw: str) -> AudioSpec:
    if raw.startswith(RANDOM_PREFIX):
        arch = raw[len(RANDOM_PREFIX) :]
        if arch not in RANDOM_ARCHS:
            raise UnknownModel(f"unknown random audio architecture {arch!r}", hint=f"known: {', '.join(RANDOM_ARCHS)}")
        return AudioSpec(raw, True, None)
    return AudioSpec(raw, False, Path(raw).expanduser())


class ClapEmbedder:
    """Audio windows (mono float32 at any rate) and texts into one L2-normalised space."""

    def __init__(self, spec: AudioSpec, model: Any, extractor: Any, tokenizer: Any | None) -> None:
        self.spec = spec
        self._model = model
        self._extractor = extractor
        self._tokenizer = tokenizer
        self.dim = int(model.config.projection_dim)

    @classmethod
    def load(cls, raw: str) -> ClapEmbedder:
        spec = parse_audio_spec(raw)
        if spec.untrained:
            log.warning("audio model %s has UNTRAINED random weights: audio results are noise (tests only)", raw)
            model, extractor = _random_clap()
            return cls(spec, model, extractor, None)
        assert spec.path is not None
        if not spec.path.is_dir():
            raise WeightsUnavailable(
                f"audio model {raw!r} is not a directory",
                hint="give --audio-model a local CLAP checkpoint directory (transformers format) or random:clap-tiny",
            )
        from transformers import ClapModel, ClapProcessor

        try:
            processor = ClapProcessor.from_pretrained(spec.path, local_files_only=True)
            model = ClapModel.from_pretrained(spec.path, local_files_only=True).eval()
        except (OSError, ValueError) as e:
            raise WeightsUnavailable(f"cannot load CLAP from {raw}: {str(e).splitlines()[0]}") from e
        return cls(spec, model, processor.feature_extractor, processor.tokenizer)

    def embed_audio(self, windows: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        import torch

        if not windows:
            return np.zeros((0, self.dim), np.float32)
        resampled = [_resample(w, sample_rate, CLAP_SAMPLE_RATE) for w in windows]
        features = self._extractor(
            resampled, sampling_rate=CLAP_SAMPLE_RATE, return_tensors="pt", truncation="rand_trunc", padding="repeatpad"
        )
        with torch.no_grad():
            out = self._model.get_audio_features(input_features=features["input_features"])
        return normalize(_tensor(out).numpy())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if self._tokenizer is None:
            ids, mask = _hash_tokens(texts)
        else:
            tokens = self._tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
            ids, mask = tokens["input_ids"], tokens["attention_mask"]
        with torch.no_grad():
            out = self._model.get_text_features(input_ids=ids, attention_mask=mask)
        return normalize(_tensor(out).numpy())


def _tensor(out: Any) -> Any:
    """transformers 4 returns the projected features, 5 a model output whose pooler_output holds them."""
    return out if hasattr(out, "numpy") else out.pooler_output


def _random_clap() -> tuple[Any, Any]:
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    # Small enough to build in well under a second; the audio tower's last stage width is 24 * 2**3 = 192.
    config = ClapConfig(
        text_config={
            "vocab_size": RANDOM_VOCAB,
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 128,
            "max_position_embeddings": MAX_TEXT_TOKENS + 4,
        },
        audio_config={
            "hidden_size": 192,
            "depths": [1, 1, 1, 1],
            "num_attention_heads": [2, 2, 2, 2],
            "patch_embeds_hidden_size": 24,
            "window_size": 8,
            "spec_size": 256,
            "num_mel_bins": 64,
        },
        projection_dim=64,
    )
    torch.manual_seed(RANDOM_SEED)
    return ClapModel(config).eval(), ClapFeatureExtractor()


def _hash_tokens(texts: Sequence[str]) -> tuple[Any, Any]:
    """Word ids by a stable hash (the random model has no tokenizer); 0 is <s>, 2 is </s>, 1 is padding."""
    import torch

    rows = []
    for text in texts:
        words = re.findall(r"\w+", text.lower())[: MAX_TEXT_TOKENS - 2]
        rows.append([0, *(3 + int(hashlib.md5(w.encode()).hexdigest(), 16) % (RANDOM_VOCAB - 3) for w in words), 2])
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [1] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def _resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target or len(samples) == 0:
        return samples.astype(np.float32)
    n = round(len(samples) * target / rate)
    return np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples).astype(np.float32)
