"""Embed stage: frames, images and transcript text into one L2-normalised CLIP space."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import UnknownModel, WeightsUnavailable
from .models import ModelSpec, checkpoint_path

log = logging.getLogger(__name__)

# Our own open_clip configs (tiny test architectures) live beside the package, like open_clip's model_configs.
MODEL_CONFIG_DIR = Path(__file__).parent / "assets" / "model_configs"
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


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "gpu":
        return "cuda"
    return device


def _offline_hint(spec: ModelSpec) -> str:
    return (
        f'download the checkpoint on a connected machine (e.g. `python -c "import open_clip; '
        f"open_clip.create_model_and_transforms('{spec.arch}', pretrained='{spec.weights}')\"` fills the cache), "
        f"or pass a local file: --model {spec.arch}:/path/to/open_clip_pytorch_model.bin"
    )


class OpenClipEmbedder:
    """open_clip image and text towers; fp16 on CUDA, fp32 on CPU, always under inference_mode."""

    def __init__(self, spec: ModelSpec, model: Any, preprocess: Any, tokenizer: Any, device: str) -> None:
        self.spec = spec
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = DEFAULT_BATCH
        self.dim = self._probe_dim()

    @classmethod
    def load(cls, spec: ModelSpec, device: str = "auto") -> OpenClipEmbedder:
        import open_clip
        import torch

        if MODEL_CONFIG_DIR.is_dir():
            open_clip.add_model_config(MODEL_CONFIG_DIR)
        if spec.arch not in open_clip.list_models():
            raise UnknownModel(
                f"open_clip has no architecture {spec.arch!r}",
                hint="`mmsearch models` lists recommended specs; open_clip.list_models() lists all",
            )
        torch_device = resolve_device(device)
        pretrained = _pretrained_arg(spec)
        precision = "fp16" if torch_device == "cuda" else "fp32"
        try:
            with warnings.catch_warnings(), _hub_mode(), torch.random.fork_rng(devices=[]):
                # random:ARCH is an explicit request (the CLI has warned loudly); a fixed seed makes the
                # "random" weights the same in `index` and `query`, or the two would share no space at all.
                warnings.simplefilter("ignore" if spec.family == "random" else "default")
                torch.manual_seed(RANDOM_WEIGHTS_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    spec.arch, pretrained=pretrained, device=torch_device, precision=precision
                )
        except Exception as e:  # download and checkpoint errors come in many types; all mean "no weights"
            first = str(e).strip().split(". ")[0][:240]
            raise WeightsUnavailable(
                f"cannot load weights {spec.weights!r} for {spec.arch}: {first}", hint=_offline_hint(spec)
            ) from e
        model.eval()
        return cls(spec, model, preprocess, open_clip.get_tokenizer(spec.arch), torch_device)

    def _probe_dim(self) -> int:
        return int(self.embed_texts(["probe"]).shape[1])

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch
        from PIL import Image

        out = []
        for lo in range(0, len(images), self.batch_size):
            chunk = images[lo : lo + self.batch_size]
            batch = torch.stack([self.preprocess(Image.fromarray(img)) for img in chunk]).to(self.device)
            with torch.inference_mode():
                feats = self.model.encode_image(batch.to(self._dtype()))
            out.append(feats.float().cpu().numpy())
        return normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        for lo in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[lo : lo + self.batch_size])).to(self.device)
            with torch.inference_mode():
                feats = self.model.encode_text(tokens)
            out.append(feats.float().cpu().numpy())
        return normalize(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)

    def _dtype(self) -> Any:
        return next(self.model.parameters()).dtype


HUB_HOST = ("huggingface.co", 443)


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick TCP connect, so offline machines fail in seconds instead of minutes of download retries."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_mode() -> Iterator[None]:
    """Use only the local Hugging Face cache when the hub cannot be reached."""
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = saved or not hub_reachable()
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


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


class HashEmbedder:
    """Deterministic, weight-free embedder for tests: equal inputs give equal vectors, similar images similar ones.

    Images are reduced to a 16x16 thumbnail and projected; texts are bags of hashed words. It puts text and
    images in one space only formally, so it serves ranking and plumbing tests, never real retrieval.
    """

    DIM = 64

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.dim = self.DIM
        rng = np.random.default_rng(1234)
        self._projection = rng.standard_normal((16 * 16 * 3, self.DIM)).astype(np.float32)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from PIL import Image

        rows = []
        for img in images:
            thumb = np.asarray(
                Image.fromarray(img).convert("RGB").resize((16, 16), Image.Resampling.BILINEAR), np.float32
            )
            rows.append((thumb.reshape(-1) / 255.0 - 0.5) @ self._projection)
        return normalize(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self._text_vector(t) for t in texts]
        return normalize(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)

    def _text_vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.DIM, np.float32)
        for word in "".join(c if c.isalnum() else " " for c in text.lower()).split():
            seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            vec += np.random.default_rng(seed).standard_normal(self.DIM).astype(np.float32)
        if not vec.any():
            vec[0] = 1.0
        return vec
