"""The sentence model in onnxruntime + `tokenizers`: text queries and ingest without torch or transformers.

A sentence-transformers model that is a transformer followed by mean or CLS pooling (all-MiniLM-L6-v2 is) is
exported once per set of weights, like the CLIP towers: the transformer to ONNX (fp32, and a dynamically quantised
int8 copy), its fast tokenizer to `tokenizer.json`, the pooling and sequence length to `meta.json`; the cache key
is a hash of the weights file. The export self-checks: probe sentences (short, long past the sequence length,
punctuation, non-ASCII) are embedded by sentence-transformers and by each ONNX model; a model whose worst cosine is
below AGREE is not used, and the loader says so and falls back to sentence-transformers.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .onnx_cache import (
    CPU_PROVIDERS,
    CUDA_PROVIDERS,
    META_FILE,
    cache_root,
    cached_export,
    cuda_available,
    file_sha256,
    safe_name,
    session,
)

log = logging.getLogger(__name__)

# Worst cosine similarity, over the probe sentences, of an ONNX model's embedding to sentence-transformers'.
AGREE = 0.999
# Bumped when what an export holds changes, so older cached exports are made again.
EXPORT_FORMAT = 1
PROBE_SENTENCES = (
    "the chef sliced fresh salmon",
    "a cook cut raw fish with a blade",
    "Quarterly revenue grew 12% to $4.2 bn",
    "PLATFORM SEVEN",
    "x",
    "Ünïcödé café naïve — déjà vu, 東京 station",
    "we choose to go to the moon in this decade and do the other things, not because they are easy " * 12,
)
POOLINGS = ("mean", "cls")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
BATCH = 64


def wants_cuda(device: str) -> bool:
    """`--device` cuda/gpu, or auto on a machine with a CUDA driver (then onnxruntime-gpu's CUDA provider runs it)."""
    from .hub import cuda_driver_present

    return device in ("cuda", "gpu") or (device == "auto" and cuda_driver_present())


def weights_file(directory: Path) -> Path | None:
    return next((directory / f for f in WEIGHT_FILES if (directory / f).is_file()), None)


def export_dir(name: str, directory: Path) -> Path | None:
    """Where the export of the model in `directory` lives (keyed by its weights), or None without a weights file."""
    weights = weights_file(directory)
    if weights is None:
        return None
    key = hashlib.sha256(f"{file_sha256(weights)}:{_config_ident(directory)}".encode()).hexdigest()
    return cache_root() / "sentence" / f"{safe_name(Path(name).name)}-{key[:16]}-v{EXPORT_FORMAT}"


def _config_ident(directory: Path) -> str:
    """What besides the weights decides the embedding: tokenizer, pooling, sequence length."""
    parts = []
    for rel in ("tokenizer.json", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json"):
        path = directory / rel
        parts.append(hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else "-")
    return ",".join(parts)


def ensure_exported(name: str, directory: Path) -> Path | None:
    target = export_dir(name, directory)
    return None if target is None else cached_export(target, lambda staging: export(directory, staging))


def export(directory: Path, out: Path) -> None:
    """Export the sentence-transformers model in `directory` under `out` and measure it against the original."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    log.info("exporting sentence model %s to ONNX under %s (once per set of weights)", directory, out)
    model: Any = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
    pooling = _pooling(model)
    transformer = model[0].auto_model.eval()
    model.tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in model.tokenizer.model_input_names]
    example = model.tokenizer(["an example", "a second example sentence"], return_tensors="pt", padding=True)
    _export_transformer(torch, transformer, tuple(example[n] for n in inputs), inputs, out / "model-fp32.onnx")
    _quantise(out / "model-fp32.onnx", out / "model-int8.onnx")
    reference = model.encode(
        list(PROBE_SENTENCES), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    meta: dict[str, Any] = {
        "source": str(directory),
        "pooling": pooling,
        "max_length": int(model.max_seq_length),
        "inputs": inputs,
        "dim": int(reference.shape[1]),
        "pad_id": int(model.tokenizer.pad_token_id or 0),
        "pad_token": str(model.tokenizer.pad_token or "[PAD]"),
    }
    (out / META_FILE).write_text(json.dumps(meta))  # read back by the loader below, then completed
    meta["probe"] = {}
    for precision in ("fp32", "int8"):
        onnx = OnnxSentenceModel(out, meta, precision)
        meta["probe"][precision] = _worst_cosine(onnx.embed(PROBE_SENTENCES), reference)
    (out / META_FILE).write_text(json.dumps(meta, indent=1))


def _pooling(model: Any) -> str:
    """The pooling of a [Transformer, Pooling(, Normalize)] model, or a ValueError for anything else."""
    modules = [type(m).__name__ for m in model]
    if modules[:2] != ["Transformer", "Pooling"] or any(m != "Normalize" for m in modules[2:]):
        raise ValueError(f"only transformer + pooling models are exported, not {' + '.join(modules)}")
    config = model[1].get_config_dict()
    if "pooling_mode" in config:  # sentence-transformers >= 6: one mode by name
        chosen = [str(config["pooling_mode"])]
    else:  # older releases: a flag per mode
        chosen = [k.removeprefix("pooling_mode_").removesuffix("_tokens") for k, v in config.items() if v is True]
    if len(chosen) != 1 or chosen[0] not in POOLINGS:
        raise ValueError(f"only mean or cls pooling is exported, not {config}")
    return chosen[0]


def _export_transformer(torch: Any, transformer: Any, example: tuple[Any, ...], inputs: list[str], path: Path) -> None:
    import warnings

    axes = {name: {0: "batch", 1: "tokens"} for name in inputs}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on constant shapes
        torch.onnx.export(
            _HiddenStates(torch, transformer, inputs),
            example,
            str(path),
            input_names=inputs,
            output_names=["hidden"],
            dynamic_axes={**axes, "hidden": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )


def _HiddenStates(torch: Any, transformer: Any, inputs: list[str]) -> Any:  # noqa: N802 (made where torch is)
    """The transformer's last hidden states as a module of positional inputs named `inputs`."""

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *args: Any) -> Any:
            return self.transformer(**dict(zip(inputs, args, strict=True)), return_dict=False)[0]

    return HiddenStates()


def _quantise(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime's quantiser logs a line per tensor on the root logger
    try:
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def _worst_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return round(float((a * b).sum(axis=1).min()), 6)


@dataclass(frozen=True)
class ExportCheck:
    """Which precision of an export to use: the fastest whose probe agreement passes, or None and why not."""

    precision: str | None
    why: str

    @classmethod
    def of(cls, meta: dict[str, Any], preferred: tuple[str, ...] = ("int8", "fp32")) -> ExportCheck:
        probe = meta.get("probe", {})
        for precision in preferred:
            if probe.get(precision, 0.0) >= AGREE:
                return cls(precision, f"{precision}: worst probe cosine {probe[precision]} >= {AGREE}")
        return cls(None, f"worst probe cosine to sentence-transformers {probe} is below {AGREE}")


class OnnxSentenceModel:
    """Tokenizer + transformer in onnxruntime + pooling in numpy: L2-normalised sentence vectors."""

    def __init__(self, directory: Path, meta: dict[str, Any], precision: str, device: str = "cpu") -> None:
        from tokenizers import Tokenizer

        self.meta = meta
        self.precision = precision
        self.dim = int(meta["dim"])
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=int(meta["max_length"]))
        self._tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=str(meta["pad_token"]))
        providers = CUDA_PROVIDERS if wants_cuda(device) and cuda_available() else CPU_PROVIDERS
        self._session = session(directory / f"model-{precision}.onnx", providers)

    @classmethod
    def open(cls, directory: Path, precision: str, device: str = "cpu") -> OnnxSentenceModel:
        return cls(directory, json.loads((directory / META_FILE).read_text()), precision, device)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # sentence-transformers strips each text, and batches texts of similar length together (less padding).
        stripped = [str(t).strip() for t in texts]
        order = sorted(range(len(stripped)), key=lambda n: -len(stripped[n]))
        out = np.zeros((len(stripped), self.dim), np.float32)
        for lo in range(0, len(order), BATCH):
            rows = order[lo : lo + BATCH]
            out[rows] = self._embed_batch([stripped[n] for n in rows])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        arrays = {
            "input_ids": np.array([e.ids for e in encodings], np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], np.int64),
        }
        hidden = self._session.run(None, {name: arrays[name] for name in self.meta["inputs"]})[0]
        if self.meta["pooling"] == "cls":
            pooled = hidden[:, 0]
        else:
            mask = arrays["attention_mask"][:, :, None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), np.float32)
