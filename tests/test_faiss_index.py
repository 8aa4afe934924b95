"""FAISS index selection by size, and every index type: persistence, reload (read and mmap), removal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import UsageError
from mmsearch.stores import faiss_index as fi
from mmsearch.stores import faiss_store as store_mod
from mmsearch.stores.faiss_files import generation_file
from mmsearch.stores.faiss_index import auto_kind, check_index_type, needs_rebuild, nlist_for, plan_for, pq_m_for
from mmsearch.stores.faiss_store import FaissStore

D = 32
N = 10_500  # enough to train IVF-PQ's 256-centroid codebooks (PQ_MIN_TRAIN)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """Clustered unit vectors (IVF on uniform noise would be a meaningless test)."""
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((40, D))
    return _unit(centres[rng.integers(0, 40, N)] + 0.4 * rng.standard_normal((N, D)))


def test_auto_rule_by_size() -> None:
    assert auto_kind(0) == auto_kind(fi.FLAT_MAX_VECTORS - 1) == "flat"
    assert auto_kind(fi.FLAT_MAX_VECTORS) == auto_kind(fi.SQ8_MIN_VECTORS - 1) == "ivf"
    assert auto_kind(fi.SQ8_MIN_VECTORS) == auto_kind(50_000_000) == "sq8"
    assert plan_for(100_000, 512, "auto").kind == "ivf"
    assert nlist_for(100_000) == 1024 and nlist_for(1_000_000) == 4096  # ~4 sqrt(n), a power of two
    assert plan_for(100_000, 512, "auto").nprobe == max(fi.NPROBE_MIN, 1024 // fi.NPROBE_DIVISOR)


def test_overrides_and_untrainable_sizes() -> None:
    assert plan_for(10, 512, "hnsw").kind == "hnsw"  # HNSW needs no training
    assert plan_for(10, 512, "ivf").kind == "flat"  # too few vectors to train: flat until there are enough
    assert plan_for(5_000, 512, "ivfpq").kind == "flat"
    small = plan_for(100, 512, "ivf")
    assert small.kind == "ivf" and small.nlist == 2  # never more lists than 39 points each can train
    assert plan_for(20_000, 512, "ivfpq").pq_m == 64 and pq_m_for(100) == 10 and pq_m_for(7) == 1
    with pytest.raises(UsageError, match="--index-type"):
        check_index_type("annoy")


def test_rebuild_when_rule_changes_kind_or_index_grew() -> None:
    ivf = plan_for(60_000, 512, "auto")
    assert not needs_rebuild(ivf, 60_000, 512, "auto")
    assert not needs_rebuild(ivf, fi.RETRAIN_GROWTH * 60_000, 512, "auto")
    assert needs_rebuild(ivf, fi.RETRAIN_GROWTH * 60_000 + 1, 512, "auto")
    assert needs_rebuild(ivf, 1_000, 512, "auto")  # shrank below the flat threshold
    assert needs_rebuild(plan_for(0, 512, "auto"), 60_000, 512, "auto")


def _exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ data.T), axis=1)[:, :k]


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.mark.parametrize("kind", ["flat", "ivf", "sq8", "ivfpq", "hnsw"])
def test_each_type_persists_reloads_and_removes(kind: str, data: np.ndarray, tmp_path: Path) -> None:
    ids = np.arange(N, dtype=np.int64) + 1  # catalog ids start at 1
    st = FaissStore.create(D, device="cpu", requested=kind)
    st.add(ids, data)
    recorded = st.persist(tmp_path, 1)
    assert recorded["index_type"] == st.kind == kind
    rng = np.random.default_rng(1)
    queries = _unit(data[rng.integers(0, N, 50)] + 0.3 * rng.standard_normal((50, D)))
    before = st.search(queries, 10)
    truth = _exact_top(data, queries, 10) + 1
    # 4-byte PQ codes of 32-d vectors are coarse; random ids would score ~0.001
    assert _recall(before.ids, truth) >= (0.3 if kind == "ivfpq" else 0.9)

    plan = fi.plan_from_manifest(recorded["index_type"], recorded["index_params"])
    for mmap in (False, True):
        loaded = FaissStore.load(generation_file(tmp_path, 1), "cpu", plan, mmap=mmap)
        assert loaded.kind == kind and loaded.mmapped == mmap and loaded.ntotal == N
        after = loaded.search(queries, 10)
        np.testing.assert_array_equal(after.ids, before.ids)
        np.testing.assert_allclose(after.scores, before.scores, rtol=1e-5, atol=1e-6)

    writer_copy = FaissStore.load(generation_file(tmp_path, 1), "cpu", plan)
    writer_copy.requested = kind  # as open_store does from the manifest
    gone = before.ids[:, 0][:5]
    assert writer_copy.remove(gone) == len(set(gone.tolist()))
    assert not np.isin(writer_copy.search(queries, 10).ids, gone).any()
    assert writer_copy.persist(tmp_path, 2)["index_type"] == kind
    again = FaissStore.load(generation_file(tmp_path, 2), "cpu", plan, mmap=True)
    assert again.ntotal == N - len(set(gone.tolist())) and not np.isin(again.search(queries, 10).ids, gone).any()
    kept = [int(i) for i in ids[:3] if i not in gone]
    tolerance = 1e-6 if kind in ("flat", "ivf", "hnsw") else 0.5  # sq8/pq codes are lossy
    np.testing.assert_allclose(again.reconstruct(kept), data[np.array(kept) - 1], atol=tolerance)


def test_auto_store_switches_kind_at_commit_and_retrains(
    data: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fi, "FLAT_MAX_VECTORS", 1_000)
    st = FaissStore.create(D, device="cpu")
    st.add(np.arange(500), data[:500])
    assert st.persist(tmp_path, 1)["index_type"] == "flat"
    st.add(np.arange(500, 1_200), data[500:1_200])
    recorded = st.persist(tmp_path, 2)
    assert recorded["index_type"] == "ivf" and "trained_on=1200" in recorded["index_params"]
    st.add(np.arange(1_200, 6_000), data[1_200:6_000])
    assert "trained_on=6000" in st.persist(tmp_path, 3)["index_params"]  # grew past RETRAIN_GROWTH x
    assert sorted(st.ids().tolist()) == list(range(6_000))
    assert st.search(data[4_321], 1).ids[0, 0] == 4_321


def test_hnsw_removed_then_readded_id_keeps_only_the_new_vector(data: np.ndarray) -> None:
    st = FaissStore.create(D, device="cpu", requested="hnsw")
    st.add(np.arange(100), data[:100])
    st.remove([7])
    assert 7 not in st.search(data[7], 5).ids[0] and st.ntotal == 99
    st.add(np.array([7]), data[200:201])
    assert st.search(data[200], 1).ids[0, 0] == 7 and st.ntotal == 100
    np.testing.assert_allclose(st.reconstruct([7])[0], data[200], atol=1e-6)


def test_mmap_falls_back_to_reading_when_faiss_cannot_map(
    data: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss

    st = FaissStore.create(D, device="cpu", requested="ivf")
    st.add(np.arange(2_000), data[:2_000])
    recorded = st.persist(tmp_path, 1)
    plan = fi.plan_from_manifest(recorded["index_type"], recorded["index_params"])
    # this flag combination makes faiss refuse IVF lists ("mmap only supported for File objects")
    monkeypatch.setattr(store_mod, "mmap_flag", lambda kind: faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC)
    loaded = FaissStore.load(generation_file(tmp_path, 1), "cpu", plan, mmap=True)
    assert not loaded.mmapped and loaded.search(data[5], 1).ids[0, 0] == 5
