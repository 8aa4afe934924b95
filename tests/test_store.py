from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import CorruptIndex, UsageError
from mmsearch.stores.faiss_files import generation_file, stale_generation_files
from mmsearch.stores.faiss_store import FaissStore


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_ids_are_catalog_ids_and_search_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = _unit(rng, 50, 16)
    ids = np.arange(1000, 1050, dtype=np.int64)
    st = FaissStore.create(16, device="cpu")
    st.add(ids, vecs)
    res = st.search(vecs[7], 3)
    assert res.ids[0, 0] == 1007
    assert res.scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    brute = np.argsort(-(vecs @ vecs[7]))[:3] + 1000
    assert list(res.ids[0]) == list(brute)
    assert st.remove([1007, 1008]) == 2
    assert 1007 not in st.search(vecs[7], 50).ids[0]
    np.testing.assert_allclose(st.reconstruct([1010])[0], vecs[10], atol=1e-6)


def test_save_load_roundtrip_and_generations(tmp_path: Path) -> None:
    st = FaissStore.create(8, device="cpu")
    st.add(np.array([5, 9]), _unit(np.random.default_rng(1), 2, 8))
    for gen in (1, 2, 3):
        st.save(generation_file(tmp_path, gen))
    (tmp_path / "vectors-00000004.faiss.tmp").write_bytes(b"partial")
    loaded = FaissStore.load(generation_file(tmp_path, 3), device="cpu")
    assert sorted(loaded.ids().tolist()) == [5, 9]
    # Generation 2 is kept for readers; generation 1 too while it is within the readers' grace period.
    stale = sorted(p.name for p in stale_generation_files(tmp_path, live=3))
    assert stale == ["vectors-00000004.faiss.tmp"]
    stale = sorted(p.name for p in stale_generation_files(tmp_path, live=3, grace=0))
    assert stale == ["vectors-00000001.faiss", "vectors-00000004.faiss.tmp"]


def test_unreadable_vector_file_is_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "v.faiss"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(CorruptIndex):
        FaissStore.load(bad)


def test_wrong_dimension_is_refused() -> None:
    st = FaissStore.create(8, device="cpu")
    with pytest.raises(CorruptIndex):
        st.add(np.array([1]), np.zeros((1, 4), np.float32))


def test_device_gpu_without_gpu_is_a_usage_error() -> None:
    st = FaissStore.create(4, device="gpu")
    st.add(np.array([1]), np.ones((1, 4), np.float32) / 2)
    with pytest.raises(UsageError):
        st.search(np.ones(4, np.float32), 1)
