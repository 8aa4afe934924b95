"""Checks that need what this machine does not have: real CLIP weights, a CUDA GPU. They run where those exist:

MMSEARCH_TEST_MODEL=ViT-B-32:/models/open_clip_pytorch_model.bin pytest -m needs_weights
pytest -m needs_gpu            # on a CUDA machine with faiss-gpu installed
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from media import GoldenMedia

from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.search.searcher import Query, Searcher

REAL_MODEL = os.environ.get("MMSEARCH_TEST_MODEL")


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _faiss_gpus() -> int:
    import faiss

    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


@pytest.mark.needs_weights
@pytest.mark.skipif(not REAL_MODEL, reason="set MMSEARCH_TEST_MODEL to a real open_clip spec (ARCH:TAG or ARCH:/ckpt)")
@pytest.mark.parametrize(
    ("text", "start", "end"), [("a plain red screen", 0.0, 2.0), ("a plain blue screen", 4.0, 6.0)]
)
def test_real_clip_finds_colour_shots_by_words(
    golden: GoldenMedia, tmp_path: Path, text: str, start: float, end: float
) -> None:
    index_dir = tmp_path / "idx"
    assert REAL_MODEL is not None
    run_ingest(IngestOptions(paths=(golden.shots,), index_dir=index_dir, model=REAL_MODEL, asr=None))
    searcher = Searcher.open(index_dir)
    try:
        top = searcher.search(Query(text=text, modality="video", top_k=1))[0]
    finally:
        searcher.close()
    assert top.start is not None and top.end is not None
    assert start - 0.1 <= top.start and top.end <= end + 0.1


@pytest.mark.needs_gpu
@pytest.mark.skipif(not _cuda(), reason="no CUDA GPU")
def test_open_clip_runs_fp16_on_cuda() -> None:
    from mmsearch.models.registry import load_embedder

    emb = load_embedder("random:mmsearch-tiny", device="auto")
    assert emb.device == "cuda"  # type: ignore[attr-defined]
    assert next(emb.model.parameters()).dtype.__str__() == "torch.float16"  # type: ignore[attr-defined]
    v = emb.embed_images([np.zeros((64, 64, 3), np.uint8)])
    assert v.dtype == np.float32 and abs(float(np.linalg.norm(v[0])) - 1.0) < 1e-3


@pytest.mark.needs_gpu
@pytest.mark.skipif(_faiss_gpus() == 0, reason="faiss sees no GPU (install faiss-gpu on a CUDA machine)")
def test_faiss_gpu_search_matches_cpu() -> None:
    from mmsearch.stores.faiss_store import FaissStore

    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((2000, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    gpu, cpu = FaissStore.create(64, device="gpu"), FaissStore.create(64, device="cpu")
    for st in (gpu, cpu):
        st.add(np.arange(2000), vecs)
    a, b = gpu.search(vecs[:20], 5), cpu.search(vecs[:20], 5)
    assert (a.ids == b.ids).all()
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
