"""Readers never fail while a writer commits: real `python -m mmsearch query/info/check` processes against a real
writer making hundreds of commits (`--commit-interval 0`), plus the two races each reader must survive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmsearch.index.check as check_module
import mmsearch.index.manifest as manifest_module
from mmsearch.index.check import check_index
from mmsearch.index.facade import Index
from mmsearch.index.location import IndexLocation
from mmsearch.index.manifest import open_live
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.stores.faiss_files import READER_GRACE_SECONDS, generation_file
from mmsearch.types import MediaFile, MediaKind, Segment, SegmentKind

REPO = Path(__file__).resolve().parents[1]
IMAGES = 250  # one commit each: ~30-60 ms per commit on a loaded machine, so the writer runs 10-20 s
READER_COMMANDS = {
    "query": ["query", "red", "--json", "-k", "3", "--fusion", "rrf"],
    "info": ["info", "--json"],
    "check": ["check", "--json"],
}


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(folder / f"{seed}-{i:04d}.png")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmsearch", *args]


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}


def generation(index_dir: Path) -> int:
    out = subprocess.run(cli("info", "--json", "--index", str(index_dir)), env=cli_env(), capture_output=True)
    return int(json.loads(out.stdout)["generation"])


def reader_loop(name: str, index_dir: Path, stop: threading.Event, runs: Counter[str], failures: list[str]) -> None:
    while not stop.is_set():
        proc = subprocess.run(
            cli(*READER_COMMANDS[name], "--index", str(index_dir)), env=cli_env(), capture_output=True
        )
        runs[name] += 1
        if proc.returncode != 0:
            failures.append(
                f"{name} exit {proc.returncode}: {proc.stderr.decode()[-300:]} {proc.stdout.decode()[-300:]}"
            )
        elif name == "check" and json.loads(proc.stdout)["problems"]:
            failures.append(f"check reported {json.loads(proc.stdout)['problems']}")


@pytest.mark.slow
def test_cli_readers_never_fail_during_hundreds_of_commits(tmp_path: Path) -> None:
    media, index_dir = tmp_path / "media", tmp_path / "idx"
    make_images(media / "first", 5)
    assert subprocess.run(cli("index", str(media), "--index", str(index_dir), "--model", "test:hash", "--no-asr"),
                          env=cli_env(), capture_output=True).returncode == 0  # fmt: skip
    start = generation(index_dir)
    make_images(media / "more", IMAGES, seed=1)
    writer_cmd = cli("index", str(media), "--index", str(index_dir), "--no-asr", "--no-shots", "--commit-interval", "0")
    writer = subprocess.Popen(writer_cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stop = threading.Event()
    runs: Counter[str] = Counter()
    failures: list[str] = []
    threads = [threading.Thread(target=reader_loop, args=(n, index_dir, stop, runs, failures)) for n in READER_COMMANDS]
    for t in threads:
        t.start()
    library_runs = 0
    probe = np.ones((1, 64), np.float32) / 8
    while writer.poll() is None:  # a library reader too: many more opens than the CLI processes manage
        catalog, _, store = open_live(IndexLocation(index_dir), "cpu")
        try:
            hits = store.search(probe[:, : store.dim], 3).ids[0].tolist()
            # Every vector of the generation it opened has its segment in the catalog (which is as new or newer).
            assert len(catalog.segments_by_ids(hits)) == len(hits) == 3
        finally:
            catalog.close()
            store.close()
        library_runs += 1
    stop.set()
    for t in threads:
        t.join()
    _, err = writer.communicate()
    assert writer.returncode == 0, err.decode()
    commits = generation(index_dir) - start
    print(f"{commits} commits; CLI reader runs {dict(runs)}; library opens {library_runs}; failures {len(failures)}")
    assert commits >= IMAGES - 5
    # Each CLI reader overlapped the writer at least once (on a loaded machine a CLI start takes seconds).
    assert min(runs[n] for n in READER_COMMANDS) >= 1 and library_runs >= 20
    assert failures == []
    assert check_index(index_dir).problems == []
    assert not list(index_dir.glob("vectors-*.tmp")) and len(list(index_dir.glob("vectors-*.faiss"))) <= 2


def small_index(tmp_path: Path) -> Path:
    make_images(tmp_path / "media", 3)
    index_dir = tmp_path / "idx"
    run_ingest(IngestOptions(paths=(tmp_path / "media",), index_dir=index_dir, model="test:hash", asr=None))
    return index_dir


def commit_more(tmp_path: Path, index_dir: Path, seed: int) -> None:
    make_images(tmp_path / "media" / f"more-{seed}", 1, seed=seed)
    run_ingest(IngestOptions(paths=(tmp_path / "media",), index_dir=index_dir, model="test:hash", asr=None))


def test_reader_rereads_the_manifest_when_its_generation_is_retired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of the issue: the manifest named generation N, and before the reader opened N's file a writer
    committed twice and deleted it. The reader opens the generation the manifest names now."""
    index_dir = small_index(tmp_path)
    real_open = manifest_module.open_generation
    calls: list[int] = []

    def slow_reader(manifest: manifest_module.Manifest, *args: object, **kwargs: object) -> object:
        if not calls:
            commit_more(tmp_path, index_dir, seed=7)
            commit_more(tmp_path, index_dir, seed=8)
            generation_file(index_dir, manifest.generation).unlink(missing_ok=True)  # past the grace period
        calls.append(manifest.generation)
        return real_open(manifest, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(manifest_module, "open_generation", slow_reader)
    catalog, manifest, store = open_live(IndexLocation(index_dir), "cpu")
    try:
        assert len(calls) == 2 and calls[1] > calls[0] and manifest.generation == calls[1]
        assert store.ntotal == 5 == catalog.file_count()
    finally:
        catalog.close()
        store.close()


def test_check_does_not_call_a_commit_in_progress_a_fault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """check read generation N; a writer committed and retired N's file before check loaded it."""
    index_dir = small_index(tmp_path)
    real_load = check_module._load_live
    calls: list[int] = []

    def slow_load(index_dir_: Path, manifest: manifest_module.Manifest, report: check_module.CheckReport) -> object:
        if not calls:
            commit_more(tmp_path, index_dir, seed=9)
            commit_more(tmp_path, index_dir, seed=10)
            generation_file(index_dir, manifest.generation).unlink(missing_ok=True)
        calls.append(manifest.generation)
        return real_load(index_dir_, manifest, report)

    monkeypatch.setattr(check_module, "_load_live", slow_load)
    report = check_index(index_dir)
    assert report.problems == [] and report.files == 5 and len(calls) == 2


def test_check_does_not_call_newer_generation_files_stray_after_the_writer_left(tmp_path: Path) -> None:
    """check read generation N; the writer then committed N+1 and exited: N+1 is the live file, not a stray."""
    index_dir = small_index(tmp_path)
    catalog, stale_manifest, store = open_live(IndexLocation(index_dir), "cpu")
    catalog.close()
    store.close()
    commit_more(tmp_path, index_dir, seed=11)
    report = check_module.CheckReport(index=str(index_dir))
    check_module._check_strays(IndexLocation(index_dir), stale_manifest, report)
    assert report.problems == [] and "committed during the check" in report.notes[0]


def generation_from_catalog(index_dir: Path) -> int:
    catalog, manifest, store = open_live(IndexLocation(index_dir), "cpu")
    catalog.close()
    store.close()
    return manifest.generation


def test_retired_generations_stay_for_the_grace_period_then_go(tmp_path: Path) -> None:
    """Within one run the writer keeps a retired generation while it is young (a reader lease by age), deletes it
    once the grace period is over, and at the end of the run keeps only the live and the previous generation."""
    index_dir = small_index(tmp_path)
    writer = Index.write(index_dir, "test:hash", untrained=True, device="cpu")
    with writer:
        store = writer.open_vectors(lambda: 64)
        first = writer.generation
        for i in range(3):  # catalog rows only: the files need not exist for this
            path = tmp_path / f"x{i}.png"
            media = MediaFile(path, MediaKind.IMAGE, 1, i)
            vector = np.ones((1, store.dim), np.float32) / np.sqrt(store.dim)
            writer.add_file(media, f"sha{i}", [Segment(SegmentKind.IMAGE, None, None)], vector)
            writer.commit()
        assert writer.generation == first + 3
        assert generation_file(index_dir, first).exists()  # retired two commits ago, but young: kept
        old = time.time() - 2 * READER_GRACE_SECONDS
        os.utime(generation_file(index_dir, first), (old, old))
        writer.add_file(
            MediaFile(tmp_path / "x9.png", MediaKind.IMAGE, 1, 9),
            "sha9",
            [Segment(SegmentKind.IMAGE, None, None)],
            vector,
        )
        writer.commit()
        assert not generation_file(index_dir, first).exists()
        assert generation_file(index_dir, first + 1).exists()  # young still
    live = generation_from_catalog(index_dir)
    assert sorted(p.name for p in index_dir.glob("vectors-*")) == [
        generation_file(index_dir, live - 1).name,
        generation_file(index_dir, live).name,
    ]
