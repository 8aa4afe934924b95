from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import UnknownModel, UsageError, WeightsUnavailable
from mmsearch.models.clip import OpenClipEmbedder
from mmsearch.models.hashing import HashEmbedder
from mmsearch.models.registry import load_embedder
from mmsearch.models.spec import DEFAULT_MODEL, KNOWN_MODELS, parse_model_spec


def test_spec_grammar() -> None:
    s = parse_model_spec(DEFAULT_MODEL)
    assert (s.family, s.arch, s.weights, s.untrained) == ("open_clip", "ViT-B-32", "laion2b_s34b_b79k", False)
    local = parse_model_spec("ViT-B-32:/models/clip.bin")
    assert local.is_local_checkpoint and local.weights == "/models/clip.bin"
    rnd = parse_model_spec("random:ViT-B-32")
    assert (rnd.family, rnd.arch, rnd.weights, rnd.untrained) == ("random", "ViT-B-32", None, True)
    for bad in ("", "ViT-B-32", ":tag", "arch:"):
        with pytest.raises(UsageError):
            parse_model_spec(bad)
    with pytest.raises(UnknownModel):
        parse_model_spec("test:nope")
    assert {m.spec for m in KNOWN_MODELS} >= {DEFAULT_MODEL, "test:hash"}


def test_missing_checkpoint_says_how_to_pass_one(tmp_path: Path) -> None:
    with pytest.raises(WeightsUnavailable) as err:
        load_embedder(f"ViT-B-32:{tmp_path}/nope.bin", device="cpu")
    assert "does not exist" in err.value.message and "--model ViT-B-32:/path" in (err.value.hint or "")


def test_offline_pretrained_tag_fails_fast_without_random_fallback() -> None:
    with pytest.raises(WeightsUnavailable) as err:
        load_embedder(DEFAULT_MODEL, device="cpu")
    assert "--model ViT-B-32:/path/to/open_clip_pytorch_model.bin" in (err.value.hint or "")


def test_unknown_tag_and_arch() -> None:
    with pytest.raises(WeightsUnavailable, match="no pretrained tag"):
        load_embedder("ViT-B-32:not-a-tag", device="cpu")
    with pytest.raises(UnknownModel):
        load_embedder("NoSuchArch:openai", device="cpu")


def test_random_open_clip_real_code_path() -> None:
    emb = load_embedder("random:mmsearch-tiny", device="cpu")
    assert isinstance(emb, OpenClipEmbedder) and emb.dim == 64
    frames = [np.full((48, 64, 3), c, np.uint8) for c in (0, 128, 255)]
    v = emb.embed_images(frames)
    assert v.shape == (3, 64) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb.embed_images(frames[:1])[0], v[0], atol=1e-5)  # deterministic
    t = emb.embed_texts(["a red square", "speech about dogs"])
    assert t.shape == (2, 64) and not np.allclose(t[0], t[1])


def test_checkpoint_path_loads_real_weights_file(tmp_path: Path) -> None:
    """A local checkpoint is loaded as given: save the tiny model's weights, reload, same vectors."""
    import torch

    emb = load_embedder("random:mmsearch-tiny", device="cpu")
    ckpt = tmp_path / "tiny.pt"
    torch.save(emb.model.state_dict(), ckpt)
    again = load_embedder(f"mmsearch-tiny:{ckpt}", device="cpu")
    np.testing.assert_allclose(again.embed_texts(["hello"]), emb.embed_texts(["hello"]), atol=1e-5)
    assert not again.spec.untrained


def test_hash_embedder_is_deterministic_and_discriminative() -> None:
    emb = load_embedder("test:hash")
    assert isinstance(emb, HashEmbedder)
    a, b, c = emb.embed_texts(["red fox jumps", "red fox jumps", "blue whale sings"])
    assert np.allclose(a, b) and float(a @ c) < 0.5
    img = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    x, y = emb.embed_images([img, 255 - img])
    assert float(x @ emb.embed_images([img])[0]) == pytest.approx(1.0) and float(x @ y) < 0.5
