"""Tensor preprocessing (batched resize, crop, normalise on the model's device) equals open_clip's PIL transform."""

from __future__ import annotations

import numpy as np
import pytest

from mmsearch.models.preprocess import PreprocessConfig, preprocess_batch


def _image(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Smooth blocks plus noise: the resize filter matters, as on real frames."""
    coarse = rng.integers(0, 256, (6, 8, 3)).astype(np.float32)
    smooth = np.kron(coarse, np.ones((shape[0] // 6 + 1, shape[1] // 8 + 1, 1), np.float32))[: shape[0], : shape[1]]
    return np.clip(smooth + rng.normal(0, 15, smooth.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size", [224, 64])
def test_tensor_preprocessing_matches_open_clip(size: int) -> None:
    open_clip = pytest.importorskip("open_clip")
    from PIL import Image

    transform = open_clip.image_transform(size, is_train=False)
    rng = np.random.default_rng(0)
    # landscape and portrait video frames, an upscaled small image, an exact fit, an odd aspect ratio
    images = [_image(rng, shape) for shape in ((360, 640), (640, 360), (48, 64), (size, size), (101, 333))]
    got = preprocess_batch(images, PreprocessConfig(size)).numpy()
    for image, tensor in zip(images, got, strict=True):
        ref = transform(Image.fromarray(image)).numpy()
        assert tensor.shape == ref.shape == (3, size, size)
        diff = np.abs(tensor - ref)
        # One 8-bit step is ~0.015 after normalising; PIL and torch bicubic differ by rounding, mostly < 1 step.
        assert diff.mean() < 0.006, diff.mean()
        assert np.corrcoef(tensor.ravel(), ref.ravel())[0, 1] > 0.9999


def test_batch_keeps_input_order_across_sizes() -> None:
    rng = np.random.default_rng(1)
    images = [_image(rng, (120, 160)), _image(rng, (90, 90)), _image(rng, (120, 160))]
    batch = preprocess_batch(images, PreprocessConfig(64)).numpy()
    one_by_one = [preprocess_batch([image], PreprocessConfig(64)).numpy()[0] for image in images]
    assert np.allclose(batch, np.stack(one_by_one), atol=1e-5)


def test_config_is_read_from_the_model() -> None:
    from mmsearch.models.registry import load_embedder

    emb = load_embedder("random:mmsearch-tiny", device="cpu")
    assert emb.preprocess_cfg == PreprocessConfig(64)  # type: ignore[attr-defined]
    assert PreprocessConfig.from_json(emb.preprocess_cfg.to_json()) == emb.preprocess_cfg  # type: ignore[attr-defined]


def test_torch_embeddings_match_the_pil_path() -> None:
    """The whole image tower on tensor-preprocessed frames agrees with open_clip's own transform."""
    import open_clip
    import torch
    from PIL import Image

    from mmsearch.models.clip import normalize
    from mmsearch.models.registry import load_embedder

    emb = load_embedder("random:mmsearch-tiny", device="cpu")
    rng = np.random.default_rng(2)
    images = [_image(rng, (360, 640)) for _ in range(4)]
    transform = open_clip.image_transform(64, is_train=False)
    with torch.inference_mode():
        ref = emb.model.encode_image(torch.stack([transform(Image.fromarray(i)) for i in images])).numpy()  # type: ignore[attr-defined]
    cos = (normalize(ref) * emb.embed_images(images)).sum(axis=1)
    assert cos.min() > 0.999
