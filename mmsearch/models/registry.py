"""Model registry: which factory builds an embedder for each model family (open_clip, random, test)."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UnknownModel
from .clip import Embedder, OpenClipEmbedder
from .hashing import HashEmbedder
from .precision import CLIP_FAMILIES, EmbedChoice, load_clip
from .spec import ModelSpec, parse_model_spec

EmbedderFactory = Callable[[ModelSpec, str], "Embedder"]


def _open_clip_factory(spec: ModelSpec, device: str) -> Embedder:

    return OpenClipEmbedder.load(spec, device)


def _test_factory(spec: ModelSpec, device: str) -> Embedder:

    return HashEmbedder(spec)


# Families are data: tests and plugins can register more with `register_family`.
FAMILIES: dict[str, EmbedderFactory] = {
    "open_clip": _open_clip_factory,
    "random": _open_clip_factory,
    "test": _test_factory,
}


def register_family(name: str, factory: EmbedderFactory) -> None:
    FAMILIES[name] = factory


def load_embedder(spec: ModelSpec | str, device: str = "auto", choice: EmbedChoice | None = None) -> Embedder:
    """`choice`: runtime and precision of CLIP towers (`models/precision.py`); None: PyTorch, fp16 on CUDA."""
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    if choice is not None and spec.family in CLIP_FAMILIES:
        return load_clip(spec, device, choice)
    try:
        factory = FAMILIES[spec.family]
    except KeyError as e:
        raise UnknownModel(f"unknown model family {spec.family!r}", hint=f"known: {', '.join(FAMILIES)}") from e
    return factory(spec, device)
