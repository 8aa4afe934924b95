"""The GPU path with faiss's GPU API faked (no GPU here): when it clones, how (replicate/shard), when it does not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mmsearch.errors import UsageError
from mmsearch.stores import faiss_store as store_mod
from mmsearch.stores.faiss_store import GPU_MAX_K, GPU_SHARD_ABOVE_BYTES, FaissStore, gpu_mode


class ClonerOptions:
    def __init__(self) -> None:
        self.shard = False
        self.useFloat16LookupTables = False


class FakeFaiss:
    """Real faiss for everything CPU; a recording stand-in for the GPU calls faiss-gpu would offer."""

    def __init__(self, real: Any, gpus: int = 2) -> None:
        self._real = real
        self.gpus = gpus
        self.clones: list[tuple[Any, bool]] = []
        self.gpu_params: list[tuple[str, int]] = []
        outer = self

        class ParameterSpace:
            def set_index_parameter(self, index: Any, name: str, value: int) -> None:
                outer.gpu_params.append((name, value))

        self.GpuParameterSpace = ParameterSpace
        self.GpuMultipleClonerOptions = ClonerOptions

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def get_num_gpus(self) -> int:
        return self.gpus

    def index_cpu_to_all_gpus(self, index: Any, co: ClonerOptions | None = None) -> Any:
        self.clones.append((index, bool(co and co.shard)))
        return index  # the CPU index stands in for the GPU clone: results stay checkable


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeFaiss:
    import faiss

    fake = FakeFaiss(faiss)
    monkeypatch.setattr(store_mod, "_faiss", lambda: fake)
    monkeypatch.delenv(store_mod.GPU_MODE_ENV, raising=False)
    return fake


def _vectors(n: int, d: int) -> np.ndarray:
    v = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _store(kind: str, n: int = 2000, d: int = 16, device: str = "auto") -> FaissStore:
    st = FaissStore.create(d, device=device, requested=kind)  # type: ignore[arg-type]
    st.add(np.arange(n), _vectors(n, d))
    st.optimize()  # trains the requested kind, as a commit would
    return st


def test_auto_clones_to_all_gpus_replicated_once_until_changed(fake: FakeFaiss) -> None:
    st = _store("flat")
    q = _vectors(1, 16)
    first = st.search(q, 5)
    st.search(q, 5)
    assert [shard for _, shard in fake.clones] == [False]  # replicated, and the clone is cached
    new = -q  # far from vector 0, which q equals
    st.add(np.array([99_999]), new)
    assert st.search(new, 1).ids[0, 0] == 99_999
    assert len(fake.clones) == 2  # an add invalidates the clone
    assert first.ids.shape == (1, 5)


def test_device_cpu_never_clones(fake: FakeFaiss) -> None:
    _store("flat", device="cpu").search(_vectors(1, 16), 5)
    assert fake.clones == []


def test_shard_by_env_and_by_size(fake: FakeFaiss, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(store_mod.GPU_MODE_ENV, "shard")
    _store("flat").search(_vectors(1, 16), 3)
    assert fake.clones[-1][1] is True
    monkeypatch.delenv(store_mod.GPU_MODE_ENV)
    assert gpu_mode(GPU_SHARD_ABOVE_BYTES + 1) == "shard"
    assert gpu_mode(GPU_SHARD_ABOVE_BYTES) == "replicate"
    monkeypatch.setenv(store_mod.GPU_MODE_ENV, "sideways")
    with pytest.raises(UsageError, match="MMSEARCH_GPU_MODE"):
        gpu_mode(1)


def test_ivf_clone_gets_the_index_nprobe(fake: FakeFaiss) -> None:
    st = _store("ivf")
    assert st.kind == "ivf" and st.plan.nprobe > 0
    st.search(_vectors(1, 16), 3)
    assert fake.clones and fake.gpu_params == [("nprobe", st.plan.nprobe)]


def test_hnsw_and_deep_searches_stay_on_cpu(fake: FakeFaiss) -> None:
    _store("hnsw").search(_vectors(1, 16), 3)
    assert fake.clones == []  # faiss GPU has no HNSW
    flat = _store("flat", n=GPU_MAX_K + 10)
    res = flat.search(_vectors(1, 16), GPU_MAX_K + 1)
    assert fake.clones == [] and res.ids.shape == (1, GPU_MAX_K + 1)


def test_device_gpu_without_gpu_is_a_usage_error(fake: FakeFaiss) -> None:
    fake.gpus = 0
    st = _store("flat", device="gpu")
    with pytest.raises(UsageError, match="no GPU"):
        st.search(_vectors(1, 16), 1)
