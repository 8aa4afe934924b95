"""CLIP image preprocessing as batched tensor ops on the model's device (resize, centre crop, normalise).

open_clip's inference transform works on one PIL image at a time: Resize(shortest side, bicubic, antialias) →
CenterCrop → ToTensor → Normalize. Here the same steps run on a whole batch at once, on the GPU when there is
one: frames go up as uint8 (4x less to copy than float), from pinned memory with a non-blocking copy.
`tests/test_embed_preprocess.py` checks the result against open_clip's PIL transform.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# open_clip's OPENAI_DATASET_MEAN / STD: the defaults of every ViT config without its own preprocess_cfg.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class PreprocessConfig:
    size: int
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"  # open_clip's inference default; "bilinear" for the few configs that ask

    @classmethod
    def from_model(cls, model: Any) -> PreprocessConfig:
        """From an open_clip model's `visual.preprocess_cfg` (set by create_model from config and pretrained tag)."""
        cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
        size = cfg.get("size", model.visual.image_size)
        size = size[0] if isinstance(size, (tuple, list)) else size
        if cfg.get("resize_mode", "shortest") != "shortest":
            raise ValueError(f"resize mode {cfg['resize_mode']!r} is not supported by the tensor preprocessing")
        return cls(
            size=int(size),
            mean=tuple(cfg.get("mean", OPENAI_MEAN)),
            std=tuple(cfg.get("std", OPENAI_STD)),
            interpolation="bilinear" if cfg.get("interpolation") == "bilinear" else "bicubic",
        )

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "mean": list(self.mean), "std": list(self.std), "interpolation": self.interpolation}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PreprocessConfig:
        return cls(int(raw["size"]), tuple(raw["mean"]), tuple(raw["std"]), str(raw["interpolation"]))


def preprocess_batch(
    images: Sequence[np.ndarray], cfg: PreprocessConfig, device: str = "cpu", dtype: Any = None
) -> Any:
    """N RGB uint8 arrays (any sizes) -> one N×3×S×S tensor on `device`, in input order."""
    import torch

    out = torch.empty((len(images), 3, cfg.size, cfg.size), device=device, dtype=dtype or torch.float32)
    # Frames of one video share a size, so a batch is usually one group; query images come one by one.
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    for indices in groups.values():
        pixels = torch.from_numpy(np.ascontiguousarray(np.stack([images[i] for i in indices])))
        if device.startswith("cuda"):
            pixels = pixels.pin_memory().to(device, non_blocking=True)
        out[indices] = _transform(pixels, cfg).to(out.dtype)
    return out


def _transform(pixels: Any, cfg: PreprocessConfig) -> Any:
    """N×H×W×3 uint8 -> N×3×S×S float32 normalised, matching torchvision Resize(S) + CenterCrop(S) on PIL."""
    import torch
    import torch.nn.functional as F

    x = pixels.permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    short, long = (h, w) if h <= w else (w, h)
    # torchvision's rule for Resize(int): the short side becomes S, the long side int(S * long / short).
    new_long = int(cfg.size * long / short)
    new_h, new_w = (cfg.size, new_long) if h <= w else (new_long, cfg.size)
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode=cfg.interpolation, align_corners=False, antialias=True)
        # PIL resizes uint8 images to uint8: round and clip the same way so the two agree to the last bit or so.
        x = x.round_().clamp_(0, 255)
    top = int(round((new_h - cfg.size) / 2.0))
    left = int(round((new_w - cfg.size) / 2.0))
    x = x[:, :, top : top + cfg.size, left : left + cfg.size]
    mean = torch.tensor(cfg.mean, device=x.device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(cfg.std, device=x.device).view(1, 3, 1, 1) * 255.0
    return (x - mean) / std
