"""Property: any sequence of add / modify / move / delete, indexed incrementally, gives the index a fresh run
over the final folder gives; content already indexed is never embedded again."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from index_state import catalog_segment_ids, index_state, make_pool, place

from mmsearch.index.catalog import Catalog
from mmsearch.index.check import check_index
from mmsearch.ingest.plan import sha256_file
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.types import IngestSummary

pytestmark = pytest.mark.slow

# A fixed set of names (one in a subfolder) so operations often hit the same paths: overwrites, moves onto
# indexed files, deleting what was just moved.
NAMES = ("a.png", "b.mp4", "c.png", "sub/d.mp4", "sub/e.png")
POOL_SIZE = 7  # index_state.make_pool: 4 images + 3 videos

Op = tuple[str, str, object]
ops = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(NAMES), st.integers(0, POOL_SIZE - 1)),
    st.tuples(st.just("move"), st.sampled_from(NAMES), st.sampled_from(NAMES)),
    st.tuples(st.just("delete"), st.sampled_from(NAMES), st.none()),
)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    files = make_pool(tmp_path_factory.mktemp("pool"))
    assert len(files) == POOL_SIZE
    return files


def apply(folder: Path, op: Op, pool: list[Path]) -> None:
    kind, name, arg = op
    path = folder / name
    if kind == "put":
        assert isinstance(arg, int)
        place(pool[arg], path)
    elif kind == "move" and path.exists():
        dest = folder / str(arg)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
    elif kind == "delete":
        path.unlink(missing_ok=True)


def index(folder: Path, index_dir: Path) -> IngestSummary:
    summary = run_ingest(IngestOptions(paths=(folder,), index_dir=index_dir, model="test:hash", asr=None))
    assert summary.failed == []
    return summary


def indexed_hashes(index_dir: Path) -> set[str]:
    catalog = Catalog.open(index_dir / "catalog.sqlite", readonly=True)
    try:
        return {r.sha256 for r in catalog.files()}
    finally:
        catalog.close()


def folder_hashes(folder: Path) -> set[str]:
    return {sha256_file(p) for p in folder.rglob("*") if p.is_file()}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    initial=st.lists(st.integers(0, POOL_SIZE - 1), min_size=len(NAMES), max_size=len(NAMES)),
    batches=st.lists(st.lists(ops, max_size=6), min_size=1, max_size=3),
)
def test_incremental_index_equals_fresh_index(pool: list[Path], initial: list[int], batches: list[list[Op]]) -> None:
    with tempfile.TemporaryDirectory(prefix="mmsearch-prop-") as tmp:
        folder, incremental = Path(tmp) / "media", Path(tmp) / "inc"
        # Start from a full, indexed folder, so that moves and puts land on indexed paths.
        start: list[Op] = [("put", name, content) for name, content in zip(NAMES, initial, strict=True)]
        for batch in [start, *batches]:
            for op in batch:
                apply(folder, op, pool)
            known = indexed_hashes(incremental) if incremental.exists() else set()
            summary = index(folder, incremental)
            if folder_hashes(folder) <= known:  # moves, deletes, copies of indexed content: nothing to embed
                assert summary.embedded == 0, batch
        fresh = Path(tmp) / "fresh"
        index(folder, fresh)
        got, want = index_state(incremental), index_state(fresh)
        assert got.files == want.files
        assert got.vectors == want.vectors == want.segment_count
        assert list(got.vector_ids) == catalog_segment_ids(incremental)  # no orphan or duplicate vector
        assert check_index(incremental).problems == []
        rerun = index(folder, incremental)
        assert (rerun.embedded, rerun.new_files, rerun.removed_files) == (0, 0, 0)


def test_pure_move_and_rename_embed_nothing(pool: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "media"
    for i, src in enumerate(pool):
        place(src, folder / f"f{i}{src.suffix}")
    first = index(folder, tmp_path / "idx")
    assert first.embedded == first.segments > 0
    before = index_state(tmp_path / "idx")
    os.replace(folder / "f0.png", folder / "renamed.png")
    (folder / "deeper").mkdir()
    os.replace(folder / "f5.mp4", folder / "deeper" / "moved.mp4")
    moved = index(folder, tmp_path / "idx")
    assert (moved.embedded, moved.new_files, moved.removed_files) == (0, 0, 0)
    after = index_state(tmp_path / "idx")
    assert sorted(after.files.values()) == sorted(before.files.values())
    assert after.vector_ids == before.vector_ids  # the moved files kept their very vectors
    assert os.fsencode(folder / "deeper" / "moved.mp4") in after.files
