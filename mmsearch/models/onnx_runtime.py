"""CLIP towers exported to ONNX and run by onnxruntime on the CPU, in fp32 or dynamically quantised to int8.

The export is made once per set of weights and cached under the user's cache directory (`cache_root`), keyed
by a hash of the weights (`weights_key`), so only the first use pays for it (about half a minute for ViT-B-32).
A cached model loads without building the PyTorch model or importing open_clip at all.

int8 is self-checked: when it is made, a fixed set of probe images and texts is embedded by the int8 and the
fp32 towers; at index time the first batch of real frames is embedded both ways too. Below AGREE_MEAN mean or
AGREE_MIN minimum cosine similarity the embedder falls back to fp32 and logs why; `runtime_record` puts what
was used and the measured agreement into the index manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from .clip import (
    DEFAULT_BATCH,
    RANDOM_WEIGHTS_SEED,
    build_model,
    cached_tokenizer,
    cut_length,
    encode_cut_text,
    normalize,
    text_cut,
)
from .clip_tokenizer import ClipTokenizer
from .onnx_cache import META_FILE, cache_root, cached_export, file_sha256, safe_name, session
from .preprocess import PreprocessConfig, preprocess_batch
from .spec import ModelSpec, checkpoint_path

log = logging.getLogger(__name__)

# Cosine similarity of int8 to fp32 embeddings of the same input. Dynamic int8 of ViT-B-32 measures >= 0.9998
# (benchmarks/README.md); 0.995 mean / 0.99 worst still ranks like fp32, and catches a broken quantisation.
AGREE_MEAN = 0.995
AGREE_MIN = 0.99
PROBE_TEXTS = (
    "a photo of a dog",
    "a red car on a street",
    "people talking in a meeting room",
    "a sunset over the sea",
    "text on a white screen",
    "a crowd at a football match",
)
PROBE_IMAGES = 8
# Real frames of the first batch checked against fp32 at index time: enough to catch footage int8 mangles,
# few enough that the fp32 pass costs a quarter of one default batch, not a whole one.
FIRST_BATCH_CHECK = 8
# Bumped when what an export holds changes, so older cached exports are made again: 2 added SHORT_TEXT.
EXPORT_FORMAT = 2
# A causal text tower pools at end-of-text, so a text of at most SHORT_TEXT_TOKENS tokens (a query: "a dog
# barking" is 5) is embedded exactly by a tower run on the first SHORT_TEXT_TOKENS only, ~5x less work than 77.
SHORT_TEXT = "text16"
SHORT_TEXT_TOKENS = 16
TOWERS = ("image", "text")


@dataclass(frozen=True)
class Thresholds:
    mean: float = AGREE_MEAN
    min: float = AGREE_MIN


@dataclass(frozen=True)
class Agreement:
    """Cosine similarity between two embeddings of the same inputs, row by row."""

    mean: float
    min: float

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> Agreement:
        cos = (normalize(a) * normalize(b)).sum(axis=1)
        return cls(float(cos.mean()), float(cos.min()))

    def passes(self, thresholds: Thresholds) -> bool:
        return self.mean >= thresholds.mean and self.min >= thresholds.min

    def to_json(self) -> dict[str, float]:
        return {"mean": round(self.mean, 6), "min": round(self.min, 6)}


def weights_key(spec: ModelSpec) -> str:
    """A hash naming the weights: the checkpoint's bytes; for a pretrained tag, the tag (a published file never
    changes); for random:ARCH, what decides the seeded initialisation (torch and open_clip versions, seed)."""
    path = checkpoint_path(spec)
    if path is not None:
        return file_sha256(path)
    if spec.family == "random":
        ident = (
            f"random:{spec.arch}:{RANDOM_WEIGHTS_SEED}:torch {version('torch')}:open_clip {version('open_clip_torch')}"
        )
    else:
        ident = f"{spec.arch}:{spec.weights}:open_clip {version('open_clip_torch')}"
    return hashlib.sha256(ident.encode()).hexdigest()


def export_dir(spec: ModelSpec) -> Path:
    return cache_root() / f"{safe_name(spec.arch)}-{weights_key(spec)[:16]}-v{EXPORT_FORMAT}"


def probe_images() -> list[np.ndarray]:
    """Fixed, seeded images with smooth structure and fine noise, at a size that needs resizing and cropping."""
    rng = np.random.default_rng(RANDOM_WEIGHTS_SEED)
    images = []
    for _ in range(PROBE_IMAGES):
        coarse = rng.integers(0, 256, size=(6, 8, 3)).astype(np.float32)
        smooth = np.kron(coarse, np.ones((40, 40, 1), np.float32))
        noise = rng.normal(0.0, 12.0, size=smooth.shape)
        images.append(np.clip(smooth + noise, 0, 255).astype(np.uint8))
    return images


def ensure_exported(spec: ModelSpec) -> Path:
    """The cached export of `spec` (fp32 and int8 towers + meta.json), making it first when missing."""
    return cached_export(export_dir(spec), lambda staging: _export(spec, staging))


def _export(spec: ModelSpec, out: Path) -> None:
    import torch

    log.info("exporting %s to ONNX under %s (once per set of weights)", spec.raw, out)
    model = build_model(spec, "cpu", "fp32")
    cfg = PreprocessConfig.from_model(model)
    tokenizer = cached_tokenizer(spec.arch)
    pixels = preprocess_batch(probe_images(), cfg)
    tokens = tokenizer(list(PROBE_TEXTS))
    with torch.inference_mode():
        reference = {"image": model.encode_image(pixels).numpy(), "text": model.encode_text(tokens).numpy()}
    _export_tower(model.visual, pixels[:2], out / "image-fp32.onnx")
    cut = text_cut(model)
    towers = TOWERS + ((SHORT_TEXT,) if cut else ())
    _export_tower(_text_tower(model, cut=False), tokens[:2], out / "text-fp32.onnx")
    if cut:  # ONNX export fixes the length: a second text tower for short texts (queries)
        assert cut_length(tokens, cut) <= SHORT_TEXT_TOKENS, "the probe texts must fit the short text tower"
        _export_tower(_text_tower(model, cut=True), tokens[:2, :SHORT_TEXT_TOKENS], out / f"{SHORT_TEXT}-fp32.onnx")
        reference[SHORT_TEXT] = reference["text"]
    for tower in towers:
        _quantise(out / f"{tower}-fp32.onnx", out / f"{tower}-int8.onnx")
    inputs = {"image": pixels.numpy(), "text": tokens.numpy(), SHORT_TEXT: tokens[:, :SHORT_TEXT_TOKENS].numpy()}
    outputs = {
        (tower, precision): _session(out / f"{tower}-{precision}.onnx").run(None, {"input": inputs[tower]})[0]
        for tower in towers
        for precision in ("fp32", "int8")
    }
    meta = {
        "model": spec.raw,
        "dim": int(reference["image"].shape[1]),
        "preprocess": cfg.to_json(),
        "tokenizer": _tokenizer_meta(tokenizer),
        "text_cut": cut,  # None: the text tower takes the whole context, there is no short one
        "towers": list(towers),
        # probe agreement of each ONNX tower with PyTorch fp32, and of int8 with fp32 across modalities
        "probe": {
            f"{tower}_{precision}": Agreement.of(outputs[tower, precision], reference[tower]).to_json()
            for tower in towers
            for precision in ("fp32", "int8")
        },
        "probe_scores_max_abs_diff": _score_drift(outputs),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1))


def _text_tower(model: Any, cut: bool) -> Any:
    """encode_text as a module's forward, for torch.onnx.export (a local class: torch is imported lazily); `cut`:
    on tokens cut after end-of-text (the export is then for the example's length; see clip.encode_text)."""
    import torch

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return encode_cut_text(self.model, tokens) if cut else self.model.encode_text(tokens)

    return TextTower()


def _export_tower(module: Any, example: Any, path: Path) -> None:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on constant shapes
        torch.onnx.export(
            module,
            (example,),
            str(path),
            input_names=["input"],
            output_names=["embedding"],
            dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _quantise(fp32: Path, int8: Path) -> None:
    """Dynamic int8 (weights quantised ahead, activations per batch); shape inference first lets onnxruntime
    quantise every MatMul, which is 20-40% faster than quantising the raw export (measured on ViT-B-32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = fp32.with_suffix(".prepared.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_dynamic(str(prepared), str(int8), weight_type=QuantType.QInt8)
    prepared.unlink()


def _score_drift(outputs: dict[tuple[str, str], np.ndarray]) -> float:
    """Largest change of an image-text similarity when both towers are int8 instead of fp32."""
    fp32 = normalize(outputs["image", "fp32"]) @ normalize(outputs["text", "fp32"]).T
    int8 = normalize(outputs["image", "int8"]) @ normalize(outputs["text", "int8"]).T
    return round(float(np.abs(fp32 - int8).max()), 6)


def _tokenizer_meta(tokenizer: Any) -> dict[str, Any]:
    # Only the default SimpleTokenizer is rebuilt standalone; anything else (HF tokenizers, other cleaning)
    # is loaded through open_clip.
    simple = (
        type(tokenizer).__name__ == "SimpleTokenizer"
        and getattr(tokenizer.clean_fn, "__name__", "") == "_clean_lower"
        and getattr(tokenizer, "reduction_fn", None) is None
        and len(tokenizer.all_special_ids) == 2
    )
    return {"simple": simple, "context_length": int(tokenizer.context_length)}


def _session(path: Path) -> Any:
    return session(path)


class OnnxClipEmbedder:
    """Image and text towers in onnxruntime (CPU), int8 or fp32; int8 checks itself on the first real frames."""

    runtime = "onnx"
    measured_choice = ""  # --precision auto: the measurement that chose this runtime (runtime_choice.py)

    def __init__(
        self, spec: ModelSpec, directory: Path, meta: dict[str, Any], thresholds: Thresholds, check_first_batch: bool
    ) -> None:
        self.spec = spec
        self.directory = directory
        self.meta = meta
        self.thresholds = thresholds
        self.dim = int(meta["dim"])
        self.batch_size = DEFAULT_BATCH
        self.preprocess_cfg = PreprocessConfig.from_json(meta["preprocess"])
        tok = meta["tokenizer"]
        self.tokenizer = ClipTokenizer(tok["context_length"]) if tok["simple"] else cached_tokenizer(spec.arch)
        self.precision = "fp32"
        self.fallback: str | None = None
        self.first_batch: Agreement | None = None
        self._check_first_batch = check_first_batch
        self._sessions: dict[tuple[str, str], Any] = {}

    @classmethod
    def load(
        cls,
        spec: ModelSpec,
        precision: str = "int8",
        thresholds: Thresholds | None = None,
        check_first_batch: bool = True,
    ) -> OnnxClipEmbedder:
        """`precision` int8 (self-checked, fp32 when the check fails) or fp32. `check_first_batch`: also compare
        the first real images with fp32 (at index time; queries of an index built in int8 need not)."""
        directory = ensure_exported(spec)
        meta = json.loads((directory / META_FILE).read_text())
        embedder = cls(spec, directory, meta, thresholds or Thresholds(), check_first_batch)
        if precision == "int8":
            embedder.precision = "int8"
            for tower in meta.get("towers", TOWERS):
                agreement = Agreement(**meta["probe"][f"{tower}_int8"])
                if not agreement.passes(embedder.thresholds):
                    embedder._fall_back(f"int8 {tower} tower on probe inputs: {_describe(agreement)}")
                    break
        return embedder

    def _fall_back(self, why: str) -> None:
        self.fallback = f"{why}, below {self.thresholds.mean} mean / {self.thresholds.min} min cosine"
        log.warning("int8 embeddings disagree with fp32 (%s); using fp32", self.fallback)
        self.precision = "fp32"

    def session(self, tower: str, precision: str) -> Any:
        if (tower, precision) not in self._sessions:
            self._sessions[tower, precision] = _session(self.directory / f"{tower}-{precision}.onnx")
        return self._sessions[tower, precision]

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        out = [
            self._embed_image_batch(images[lo : lo + self.batch_size]) for lo in range(0, len(images), self.batch_size)
        ]
        return normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def _embed_image_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        pixels = preprocess_batch(images, self.preprocess_cfg).numpy()
        vectors = self.session("image", self.precision).run(None, {"input": pixels})[0]
        if self.precision == "int8" and self._check_first_batch and self.first_batch is None:
            # The probes are synthetic; real footage is checked once too, before anything is stored.
            probe = pixels[:FIRST_BATCH_CHECK]
            reference = self.session("image", "fp32").run(None, {"input": probe})[0]
            self.first_batch = Agreement.of(vectors[: len(probe)], reference)
            if not self.first_batch.passes(self.thresholds):
                self._fall_back(
                    f"int8 image tower on the first {len(probe)} real images: {_describe(self.first_batch)}"
                )
                return np.asarray(self.session("image", "fp32").run(None, {"input": pixels})[0])
        return np.asarray(vectors)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for lo in range(0, len(texts), self.batch_size):
            tokens = np.asarray(self.tokenizer(list(texts[lo : lo + self.batch_size])), dtype=np.int64)
            tower = "text"
            if (
                SHORT_TEXT in self.meta.get("towers", ())
                and cut_length(tokens, self.meta["text_cut"]) <= SHORT_TEXT_TOKENS
            ):
                tower, tokens = SHORT_TEXT, tokens[:, :SHORT_TEXT_TOKENS]
            out.append(self.session(tower, self.precision).run(None, {"input": tokens})[0])
        return normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def runtime_record(self) -> dict[str, str]:
        """What the manifest records: runtime, precision, and the agreement measured with fp32."""
        record = {"embed_runtime": self.runtime, "embed_precision": self.precision}
        probe = self.meta["probe"]
        for tower in self.meta.get("towers", TOWERS):
            record[f"embed_{tower}_int8_cos"] = _describe(Agreement(**probe[f"{tower}_int8"]))
        record["embed_int8_score_drift"] = str(self.meta["probe_scores_max_abs_diff"])
        if self.first_batch is not None:
            record["embed_first_batch_int8_cos"] = _describe(self.first_batch)
        if self.fallback:
            record["embed_int8_fallback"] = self.fallback
        return record


def _describe(agreement: Agreement) -> str:
    return f"mean {agreement.mean:.6f} min {agreement.min:.6f}"
