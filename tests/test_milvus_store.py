"""Milvus backend (embedded milvus-lite): the store itself, its consistency rules, and parity with exact FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from media import GoldenMedia
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.errors import BackendUnavailable, UsageError
from mmsearch.search.searcher import Query, Searcher
from mmsearch.stores.faiss_store import FaissStore
from mmsearch.stores.milvus_store import MilvusStore, default_collection, normalize_uri
from mmsearch.stores.protocol import StoreConfig
from mmsearch.stores.registry import check_store_options
from mmsearch.testing.media import extract_frame

runner = CliRunner()


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_store_matches_exact_faiss_and_orders_writes_around_the_commit(tmp_path: Path) -> None:
    vecs = _unit(300, 16)
    ids = np.arange(1, 301)
    store = MilvusStore.create(str(tmp_path / "m.db"), "segs", 16)
    store.add(ids, vecs)
    assert store.ntotal == 0  # nothing reaches Milvus before the commit
    assert store.persist(tmp_path, 1) == {"milvus_uri": str(tmp_path / "m.db"), "milvus_collection": "segs"}
    exact = FaissStore.create(16, device="cpu")
    exact.add(ids, vecs)
    queries = _unit(5, 16, seed=1)
    got, want = store.search(queries, 10), exact.search(queries, 10)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
    np.testing.assert_allclose(store.reconstruct([3, 250]), vecs[[2, 249]], atol=1e-6)

    store.remove([1, 2])
    store.add(np.array([2]), vecs[100:101])  # an id removed and reused before the commit keeps the new vector
    store.persist(tmp_path, 2)
    assert store.ntotal == 300  # removals wait until the catalog has committed
    store.after_commit()
    assert store.ntotal == 299 and 1 not in store.search(vecs[0], 5).ids[0]
    np.testing.assert_allclose(store.reconstruct([2])[0], vecs[100], atol=1e-6)
    assert store.sync(list(range(2, 200))) == 101  # orphans beyond what the catalog holds are deleted
    assert sorted(store.ids().tolist()) == list(range(2, 200))
    store.close()


def test_existing_collection_must_be_empty_and_named_one_must_exist(tmp_path: Path) -> None:
    uri = str(tmp_path / "m.db")
    store = MilvusStore.create(uri, "segs", 8)
    store.add(np.array([1]), _unit(1, 8))
    store.persist(tmp_path, 1)
    store.close()
    with pytest.raises(UsageError, match="already holds 1 vectors"):
        MilvusStore.create(uri, "segs", 8)
    with pytest.raises(BackendUnavailable, match="no collection"):
        MilvusStore.open(uri, "other", 8)


def test_uri_and_collection_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_uri("x.db") == str(tmp_path / "x.db")
    assert normalize_uri("http://milvus:19530") == "http://milvus:19530"
    with pytest.raises(UsageError):
        normalize_uri("x.sqlite")
    a, b = default_collection(tmp_path / "idx-a"), default_collection(tmp_path / "idx b")
    assert a != b and a.startswith("mmsearch_idx_a_") and b.replace("_", "").isalnum()
    with pytest.raises(UsageError, match="--uri"):
        check_store_options(StoreConfig(backend="milvus"))
    with pytest.raises(UsageError, match="--backend milvus"):
        check_store_options(StoreConfig(uri="x.db"))
    with pytest.raises(UsageError, match="faiss backend"):
        check_store_options(StoreConfig(backend="milvus", uri="x.db", index_type="ivf"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--backend", "milvus"], "--uri"),
        (["--backend", "lance"], "--backend must be"),
        (["--uri", "x.db"], "--backend milvus"),
        (["--index-type", "annoy"], "--index-type must be"),
    ],
)
def test_index_store_usage_errors_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["index", str(tmp_path), "--model", "test:hash", "--no-asr", *args])
    assert result.exit_code == 2 and needle in result.stderr


def _index(media: Path, index: Path, *extra: str) -> dict:
    result = runner.invoke(
        app, ["index", str(media), "--index", str(index), "--model", "test:hash", "--no-asr", "--json", *extra]
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def _query(index: Path, *args: str) -> list[dict]:
    result = runner.invoke(app, ["query", *args, "--index", str(index), "--json"])  # no backend flags
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["results"]


@pytest.mark.slow
def test_milvus_lite_and_faiss_give_the_same_moments(golden: GoldenMedia, tmp_path: Path) -> None:
    faiss_dir, milvus_dir, hnsw_dir = tmp_path / "faiss", tmp_path / "milvus", tmp_path / "hnsw"
    uri = str(tmp_path / "vectors.db")
    assert (
        _index(golden.root, faiss_dir)["segments"]
        == _index(golden.root, milvus_dir, "--backend", "milvus", "--uri", uri)["segments"]
    )
    _index(golden.root, hnsw_dir, "--index-type", "hnsw")
    info = json.loads(runner.invoke(app, ["info", "--index", str(milvus_dir), "--json"]).stdout)
    assert (
        info["backend"] == "milvus" and info["vectors"] == 9
    )  # 8 frames (12 sampled, deduped) + 1 image, no speech (--no-asr)
    assert json.loads(runner.invoke(app, ["info", "--index", str(hnsw_dir), "--json"]).stdout)["index_type"] == "hnsw"

    frame = extract_frame(golden.shots, 3.0, tmp_path / "q.png")
    for args in (["--image", str(frame)], ["--image", str(golden.still)], ["red fox"], ["blue", "--modality", "video"]):
        want = _query(faiss_dir, *args, "--top-k", "5")
        for other in (milvus_dir, hnsw_dir):
            got = _query(other, *args, "--top-k", "5")
            assert [(m["path"], m["kind"], m["start"], m["end"]) for m in got] == [
                (m["path"], m["kind"], m["start"], m["end"]) for m in want
            ]
            assert [m["score"] for m in got] == pytest.approx([m["score"] for m in want], abs=1e-4)
    assert _query(milvus_dir, "--image", str(frame))[0]["path"] == str(golden.shots)

    # library level: the raw segment hits agree for arbitrary vectors, and re-indexing keeps the backend
    rng = np.random.default_rng(3)
    exact, milvus = Searcher.open(faiss_dir), Searcher.open(milvus_dir)
    try:
        assert milvus.manifest.backend == "milvus" and milvus.manifest.raw["milvus_uri"] == uri
        for v in rng.standard_normal((5, 64)).astype(np.float32):
            v /= np.linalg.norm(v)
            a, b = exact.search_vector(v, 13), milvus.search_vector(v, 13)
            # frames of a one-colour shot tie exactly and engines order ties differently: rank all 13 segments
            assert sorted((round(h.score, 4), h.path, h.start) for h in a) == sorted(
                (round(h.score, 4), h.path, h.start) for h in b
            )
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-4)
        assert len(milvus.search(Query(text="red", top_k=3, fusion="rrf"))) == 3
    finally:
        exact.close()
        milvus.close()
    assert _index(golden.root, milvus_dir)["embedded"] == 0  # a rerun needs no --backend either
    refused = runner.invoke(
        app,
        [
            "index",
            str(golden.root),
            "--index",
            str(faiss_dir),
            "--model",
            "test:hash",
            "--backend",
            "milvus",
            "--uri",
            uri,
        ],
    )
    assert refused.exit_code == 2 and "stores its vectors in faiss" in refused.stderr
