"""Model specs as data: the `--model` grammar and the models we recommend (`registry.py` loads them).

Spec grammar:
  ARCH:PRETRAINED_TAG   open_clip architecture with a pretrained tag (downloaded by open_clip when online)
  ARCH:/path/to/ckpt    open_clip architecture with a local checkpoint file (offline use)
  random:ARCH           untrained weights -- only for testing the pipeline; loudly flagged and recorded
  test:hash             deterministic test-only embedder (no weights), for ranking logic in tests
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownModel, UsageError

DEFAULT_MODEL = "ViT-B-32:laion2b_s34b_b79k"


@dataclass(frozen=True)
class ModelSpec:
    family: str  # key of FAMILIES
    arch: str
    weights: str | None  # pretrained tag, checkpoint path, or None for untrained/test
    raw: str

    @property
    def is_local_checkpoint(self) -> bool:
        return self.weights is not None and _looks_like_path(self.weights)

    @property
    def untrained(self) -> bool:
        """True for specs whose vectors carry no meaning (random weights, test hashing)."""
        return self.family in ("random", "test")


@dataclass(frozen=True)
class KnownModel:
    """A recommended model: spec, embedding dimension, and why one would pick it."""

    spec: str
    dim: int
    note: str


# Dimensions from open_clip's model_configs/*.json (embed_dim).
KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel("ViT-B-32:laion2b_s34b_b79k", 512, "default; fast, good zero-shot retrieval"),
    KnownModel("ViT-B-32:openai", 512, "the original CLIP ViT-B/32 (published MSR-VTT zero-shot numbers)"),
    KnownModel("ViT-B-16:laion2b_s34b_b88k", 512, "more accurate, ~3x slower than B-32"),
    KnownModel("ViT-L-14:laion2b_s32b_b82k", 768, "accurate, needs a GPU for real archives"),
    KnownModel("random:mmsearch-tiny", 64, "untrained tiny model for pipeline tests only"),
    KnownModel("test:hash", 64, "deterministic hashing embedder for tests only"),
)


def _looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or value.endswith((".pt", ".bin", ".safetensors", ".pth"))


def parse_model_spec(raw: str) -> ModelSpec:
    raw = raw.strip()
    if not raw or ":" not in raw:
        raise UsageError(
            f"model spec {raw!r} is not ARCH:PRETRAINED_TAG, ARCH:/path/to/checkpoint or random:ARCH",
            hint=f"for example --model {DEFAULT_MODEL}",
        )
    head, tail = raw.split(":", 1)
    if not head or not tail:
        raise UsageError(f"model spec {raw!r} has an empty part")
    if head == "random":
        return ModelSpec("random", tail, None, raw)
    if head == "test":
        if tail != "hash":
            raise UnknownModel(f"unknown test model {tail!r}", hint="the only test model is test:hash")
        return ModelSpec("test", tail, None, raw)
    return ModelSpec("open_clip", head, tail, raw)


def checkpoint_path(spec: ModelSpec) -> Path | None:
    return Path(spec.weights).expanduser() if spec.is_local_checkpoint and spec.weights else None
