"""The CLIP towers (embed stage of ingest, query side of search): frames, images and text into one L2-normalised space."""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import UnknownModel, WeightsUnavailable
from .hub import hub_mode, resolve_device
from .preprocess import PreprocessConfig, preprocess_batch
from .spec import ModelSpec, checkpoint_path

log = logging.getLogger(__name__)

# Our own open_clip configs (tiny test architectures) live beside the package, like open_clip's model_configs.
MODEL_CONFIG_DIR = Path(__file__).parents[1] / "assets" / "model_configs"
DEFAULT_BATCH = 32
RANDOM_WEIGHTS_SEED = 0


class Embedder(Protocol):
    spec: ModelSpec
    dim: int

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _offline_hint(spec: ModelSpec) -> str:
    return (
        f'download the checkpoint on a connected machine (e.g. `python -c "import open_clip; '
        f"open_clip.create_model_and_transforms('{spec.arch}', pretrained='{spec.weights}')\"` fills the cache), "
        f"or pass a local file: --model {spec.arch}:/path/to/open_clip_pytorch_model.bin"
    )


class OpenClipEmbedder:
    """open_clip image and text towers in PyTorch (fp16 on CUDA, fp32 on CPU), always under inference_mode."""

    runtime = "torch"
    measured_choice = ""  # --precision auto: the measurement that chose this runtime (runtime_choice.py)

    def __init__(self, spec: ModelSpec, model: Any, tokenizer: Any, device: str) -> None:
        self.spec = spec
        self.model = model
        self.preprocess_cfg = PreprocessConfig.from_model(model)
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = DEFAULT_BATCH
        self.precision = "fp16" if self._dtype() == _torch_fp16() else "fp32"
        self.dim = self._probe_dim()

    @classmethod
    def load(cls, spec: ModelSpec, device: str = "auto", precision: str | None = None) -> OpenClipEmbedder:
        """`precision` None: fp16 on CUDA, fp32 elsewhere."""
        torch_device = resolve_device(device)
        model = build_model(spec, torch_device, precision or ("fp16" if torch_device == "cuda" else "fp32"))
        return cls(spec, model, cached_tokenizer(spec.arch), torch_device)

    def runtime_record(self) -> dict[str, str]:
        return {"embed_runtime": self.runtime, "embed_precision": self.precision}

    def _probe_dim(self) -> int:
        return int(self.embed_texts(["probe"]).shape[1])

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        out = []
        for lo in range(0, len(images), self.batch_size):
            batch = preprocess_batch(images[lo : lo + self.batch_size], self.preprocess_cfg, self.device, self._dtype())
            with torch.inference_mode():
                feats = self.model.encode_image(batch)
            out.append(feats.float().cpu().numpy())
        return normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        for lo in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[lo : lo + self.batch_size])).to(self.device)
            with torch.inference_mode():
                feats = encode_text(self.model, tokens)
            out.append(feats.float().cpu().numpy())
        return normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def _dtype(self) -> Any:
        return next(self.model.parameters()).dtype


def encode_text(model: Any, tokens: Any) -> Any:
    """`model.encode_text(tokens)`, computed on the tokens up to the last end-of-text token only.

    A CLIP text tower pads every text to 77 tokens, attends causally and pools at the end-of-text token, so the
    padding after it can change nothing that is pooled: dropping it gives the same vectors (to float rounding) at
    a fraction of the cost: a query of a few words is ~10 tokens, and the tower's time grows with the length
    (benchmarks/README.md, issue 10). Towers that attend both ways or pool elsewhere are run whole.
    """
    cut = text_cut(model)
    if cut is None:
        return model.encode_text(tokens)
    return encode_cut_text(model, tokens[:, : cut_length(tokens, cut)])


def text_cut(model: Any) -> dict[str, Any] | None:
    """Where the text tower pools, when its input may be cut after that token: {"pool": "argmax"} (the
    end-of-text token has the highest id) or {"pool": "eos", "eos_id": N}; None when it may not be cut."""
    pool = getattr(model, "text_pool_type", None)
    if getattr(model, "attn_mask", None) is None or pool not in ("argmax", "eos") or not hasattr(model, "ln_final"):
        return None
    return {"pool": "argmax"} if pool == "argmax" else {"pool": "eos", "eos_id": int(model.text_eos_id)}


def cut_length(tokens: Any, cut: dict[str, Any]) -> int:
    """Tokens to keep (numpy or torch, batch x 77): up to the batch's last end-of-text token."""
    if cut["pool"] == "argmax":
        ends = tokens.argmax(-1)
    else:
        hits = tokens == cut["eos_id"]
        ends = (hits.astype(np.int64) if isinstance(hits, np.ndarray) else hits.int()).argmax(-1)
    return int(ends.max()) + 1


def encode_cut_text(model: Any, tokens: Any) -> Any:
    """open_clip's encode_text on tokens of any length up to the context (positions and causal mask cut to it).
    Traced for ONNX with a dynamic length, so the export runs cut tokens too."""
    import torch

    cut = text_cut(model)
    assert cut is not None, "encode_cut_text needs a causal tower that pools at end-of-text"
    length = tokens.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    ends = tokens.argmax(dim=-1) if cut["pool"] == "argmax" else (tokens == cut["eos_id"]).int().argmax(dim=-1)
    x = x[torch.arange(x.shape[0], device=x.device), ends]
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def _torch_fp16() -> Any:
    import torch

    return torch.float16


@functools.lru_cache(maxsize=4)
def cached_tokenizer(arch: str) -> Any:
    """open_clip's tokenizer reads and parses a 1.3 MB BPE vocabulary; a process needs it once per architecture."""
    import open_clip

    return open_clip.get_tokenizer(arch)


def _open_clip() -> Any:
    import open_clip

    if MODEL_CONFIG_DIR.is_dir():
        open_clip.add_model_config(MODEL_CONFIG_DIR)
    return open_clip


def build_model(spec: ModelSpec, device: str, precision: str) -> Any:
    """The open_clip model of `spec` in eval mode; WeightsUnavailable when its weights cannot be had."""
    import torch

    open_clip = _open_clip()
    if spec.arch not in open_clip.list_models():
        raise UnknownModel(
            f"open_clip has no architecture {spec.arch!r}",
            hint="`mmsearch models` lists recommended specs; open_clip.list_models() lists all",
        )
    pretrained = _pretrained_arg(spec)
    try:
        with warnings.catch_warnings(), hub_mode(), torch.random.fork_rng(devices=[]):
            # random:ARCH is an explicit request (the CLI has warned loudly); a fixed seed makes the
            # "random" weights the same in `index` and `query`, or the two would share no space at all.
            warnings.simplefilter("ignore" if spec.family == "random" else "default")
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            if spec.is_local_checkpoint and pretrained is not None:
                model = _build_from_checkpoint(open_clip, spec.arch, pretrained, device, precision)
            else:
                model = open_clip.create_model(spec.arch, pretrained=pretrained, device=device, precision=precision)
    except Exception as e:  # download and checkpoint errors come in many types; all mean "no weights"
        first = str(e).strip().split(". ")[0][:240]
        raise WeightsUnavailable(
            f"cannot load weights {spec.weights!r} for {spec.arch}: {first}", hint=_offline_hint(spec)
        ) from e
    model.eval()
    return model


# Initialisers open_clip's modules call while being built; all their work is overwritten by the checkpoint.
_INITIALISERS = ("normal_", "uniform_", "kaiming_uniform_", "trunc_normal_", "xavier_uniform_", "constant_")


@contextlib.contextmanager
def _no_random_init() -> Iterator[None]:
    """Build modules without filling their weights: for ViT-B-32 that is 2.5-3.5 s of CPU spent on numbers that
    load_checkpoint replaces at once (benchmarks/README.md, model loading). Buffers (masks) are still computed."""
    import torch

    saved = {name: getattr(torch.nn.init, name) for name in _INITIALISERS}
    try:
        for name in _INITIALISERS:
            setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.nn.init, name, fn)


def _build_from_checkpoint(open_clip: Any, arch: str, path: str, device: str, precision: str) -> Any:
    with _no_random_init():
        model = open_clip.create_model(arch, pretrained=None, device=device, precision=precision)
    open_clip.load_checkpoint(model, path, strict=True)
    return model


def _pretrained_arg(spec: ModelSpec) -> str | None:
    if spec.family == "random":
        return None
    path = checkpoint_path(spec)
    if path is not None:
        if not path.is_file():
            raise WeightsUnavailable(
                f"checkpoint {path} does not exist",
                hint=f"pass an existing open_clip checkpoint: --model {spec.arch}:/path/to/model.bin",
            )
        return str(path)
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(spec.arch)
    if spec.weights not in tags:
        raise WeightsUnavailable(
            f"{spec.arch} has no pretrained tag {spec.weights!r}",
            hint=f"known tags: {', '.join(tags) or 'none'}; or pass a local checkpoint path",
        )
    return spec.weights
