"""Scale-out for real: worker processes sharing one PostgreSQL catalog and one Milvus server collection.

Every test here runs real servers (conftest_scaleout) and real `mmsearch` processes; none is mocked.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from media import GoldenMedia

from mmsearch.index.facade import Index
from mmsearch.index.location import IndexLocation
from mmsearch.testing.media import Shot, make_video

pytest_plugins = ["conftest_scaleout"]
pytestmark = pytest.mark.slow

SOURCES = ("red", "blue", "green", "testsrc", "smptebars", "mandelbrot", "yellow", "rgbtestsrc", "cyan")
N_VIDEOS = 9


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, media_tools: None) -> Path:
    """Nine short silent videos of two shots each (different sources, so every file has its own vectors)."""
    root = tmp_path_factory.mktemp("scaleout") / "media"
    root.mkdir()
    for i in range(N_VIDEOS):
        shots = [Shot(SOURCES[i], 2), Shot(SOURCES[(i + 3) % len(SOURCES)], 2 + i % 3)]
        make_video(root / f"clip_{i}.mp4", shots, audio=False)
    return root


def _index_cmd(folder: Path, url: str, milvus: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "mmsearch", "index", str(folder), "--catalog", url, "--backend", "milvus",
        "--uri", milvus, "--model", "test:hash", "--no-asr", "--commit-interval", "0", "--json", *extra,
    ]  # fmt: skip


def _env(tmp: Path) -> dict[str, str]:
    # PYTHONPATH: the subprocess imports this checkout's mmsearch, as the tests do.
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "MMSEARCH_INDEX": str(tmp / "unused")}


def _start(cmd: list[str], tmp: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp), cwd=tmp)


def _finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    return dict(json.loads(out))


def _state(url: str) -> dict[str, object]:
    """What a shared index holds, keyed by path: segments (kind, start, end) with their vectors, and orphans."""
    reader = Index.read(IndexLocation(Path("."), url), device="cpu")
    catalog, store = reader.catalog, reader.store
    try:
        by_id = catalog.segments_by_ids(catalog.segment_ids())
        vectors = store.reconstruct(sorted(by_id))
        files: dict[str, list[tuple[object, ...]]] = {}
        for seg_id, vector in zip(sorted(by_id), vectors, strict=True):
            s = by_id[seg_id]
            files.setdefault(s.path, []).append((s.kind.value, s.start, s.end, np.round(vector, 5).tobytes()))
        milvus_ids = set(store.ids().tolist())
        shots = catalog.shots_of(f.id for f in catalog.files())
        return {
            "files": {path: sorted(segs) for path, segs in files.items()},
            "shots": sorted(len(v) for v in shots.values()),
            "orphans": milvus_ids - set(by_id),
            "missing": set(by_id) - milvus_ids,
            "claims": _claims(url),
        }
    finally:
        catalog.close()
        store.close()


def _claims(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute("SELECT raw_path, worker FROM claims").fetchall())


@pytest.fixture(scope="module")
def reference(folder: Path, pg_server: str, milvus_uri: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The folder indexed by one worker: what any number of workers must produce."""
    url = _database(pg_server, "mm_reference")
    tmp = tmp_path_factory.mktemp("reference")
    summary = _finish(_start(_index_cmd(folder, url, milvus_uri), tmp))
    assert summary["new_files"] == N_VIDEOS
    state = _state(url)
    assert len(state["files"]) == N_VIDEOS and not state["orphans"] and not state["missing"]
    return state


def _database(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + f"/{name}"


def _same_index(state: dict, reference: dict) -> None:
    assert state["files"].keys() == reference["files"].keys()
    for path, segments in reference["files"].items():
        assert state["files"][path] == segments, path  # same segments, same vectors, file by file
    assert state["shots"] == reference["shots"]
    assert state["orphans"] == set() and state["missing"] == set() and state["claims"] == []


def test_three_workers_at_once_build_the_single_worker_index(
    folder: Path, pg_url: str, milvus_uri: str, reference: dict, tmp_path: Path
) -> None:
    workers = [_start(_index_cmd(folder, pg_url, milvus_uri), tmp_path) for _ in range(3)]
    summaries = [_finish(w) for w in workers]
    assert sum(int(s["new_files"]) for s in summaries) == N_VIDEOS  # each file indexed by exactly one worker
    _same_index(_state(pg_url), reference)

    rerun = _finish(_start(_index_cmd(folder, pg_url, milvus_uri), tmp_path))
    assert rerun["new_files"] == 0 and rerun["embedded"] == 0  # incremental runs keep their meaning


def test_a_killed_worker_leaves_nothing_a_rerun_cannot_finish(
    folder: Path, pg_url: str, milvus_uri: str, reference: dict, tmp_path: Path
) -> None:
    # A long ttl: the survivors finish before the dead worker's claims go stale, so only a rerun can take them.
    workers = [_start(_index_cmd(folder, pg_url, milvus_uri, "--claim-ttl", "60"), tmp_path) for _ in range(3)]
    victim = _first_claimant(pg_url, workers)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    survivors = [_finish(w) for w in workers if w is not victim]
    interim = _state(pg_url)
    held = [c for c in interim["claims"] if str(c[1]).split(":")[1] == str(victim.pid)]
    # The dead worker's unfinished files stay claimed (not indexed twice, not lost) until the claim goes stale.
    assert len(interim["files"]) + len(held) == N_VIDEOS, (interim["files"].keys(), held)
    assert held and 1 <= sum(int(s["new_files"]) for s in survivors) <= len(interim["files"])
    assert not interim["missing"]  # (orphans may be there: the kill can land between a Milvus upsert and its commit)

    time.sleep(1.5)  # the operator knows the worker is dead: a rerun with a short ttl takes its claims at once
    rerun = _finish(_start(_index_cmd(folder, pg_url, milvus_uri, "--claim-ttl", "1"), tmp_path))
    assert rerun["new_files"] == N_VIDEOS - len(interim["files"])
    _same_index(_state(pg_url), reference)


def _first_claimant(url: str, workers: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    """The first worker seen holding a claim (worker names are host:pid:nonce)."""
    by_pid = {str(w.pid): w for w in workers}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            for _path, worker in _claims(url):
                if worker and str(worker).split(":")[1] in by_pid:
                    return by_pid[str(worker).split(":")[1]]
        except psycopg.errors.UndefinedTable:
            pass  # no worker has migrated the catalog yet
        time.sleep(0.05)
    raise AssertionError("no worker claimed a file within 120 s")


def _query(args: list[str], cwd: Path) -> list[tuple[object, ...]]:
    cmd = [sys.executable, "-m", "mmsearch", "query", *args, "--json", "--top-k", "5"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(cwd), cwd=cwd, timeout=240, check=True).stdout
    return [(r["path"], r["kind"], r["start"], r["end"], round(r["score"], 4)) for r in json.loads(out)["results"]]


def test_query_host_with_only_the_url_answers_like_the_faiss_index(
    golden: GoldenMedia, golden_index: Path, asr_model_dir: Path, pg_url: str, milvus_uri: str, tmp_path: Path
) -> None:
    """The golden media, real Whisper tiny.en: every channel (visual, speech, keyword) answers the same."""
    cmd = _index_cmd(golden.root, pg_url, milvus_uri)
    cmd.remove("--no-asr")
    cmd += ["--asr-model", str(asr_model_dir)]
    _finish(_start(cmd, tmp_path))
    fresh = tmp_path / "query-host"
    fresh.mkdir()  # a directory with no index in it: the URL is all the query host has
    for query in (
        ["red fox jumped over the fence"],
        ["purple whales", "--channel", "keyword"],
        ["--image", str(golden.still)],
    ):
        shared = _query([*query, "--catalog", pg_url], fresh)
        local = _query([*query, "--index", str(golden_index)], fresh)
        assert shared == local and shared, query
    assert list(fresh.iterdir()) == []  # and it wrote nothing there


def test_moves_deletions_and_remove_keep_their_meaning_with_several_workers(
    folder: Path, pg_url: str, milvus_uri: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    media.mkdir()
    for i in range(4):
        shutil.copy2(folder / f"clip_{i}.mp4", media / f"clip_{i}.mp4")
    _finish(_start(_index_cmd(media, pg_url, milvus_uri), tmp_path))
    before = _state(pg_url)["files"]

    (media / "clip_0.mp4").rename(media / "renamed.mp4")
    (media / "clip_1.mp4").unlink()
    workers = [_start(_index_cmd(media, pg_url, milvus_uri), tmp_path) for _ in range(2)]
    summaries = [_finish(w) for w in workers]
    assert sum(int(s["embedded"]) for s in summaries) == 0  # a move keeps its vectors; nothing is re-embedded
    after = _state(pg_url)
    assert after["files"][str(media / "renamed.mp4")] == before[str(media / "clip_0.mp4")]
    assert sorted(after["files"]) == sorted(str(media / n) for n in ("clip_2.mp4", "clip_3.mp4", "renamed.mp4"))
    assert not after["orphans"] and not after["missing"]  # the deleted file's vectors left Milvus too

    cmd = [sys.executable, "-m", "mmsearch", "remove", str(media / "clip_2.mp4"), "--catalog", pg_url, "--json"]
    removed = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), cwd=tmp_path, check=True)
    assert json.loads(removed.stdout)["removed_files"] == 1
    final = _state(pg_url)
    assert sorted(final["files"]) == sorted(str(media / n) for n in ("clip_3.mp4", "renamed.mp4"))
    assert not final["orphans"] and not final["missing"]


def _cli(tmp: Path, *args: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "mmsearch", *args, "--json"], capture_output=True, text=True, env=_env(tmp), cwd=tmp,
        timeout=240,
    )  # fmt: skip
    assert done.stdout, done.stderr[-2000:]
    return done.returncode, dict(json.loads(done.stdout))


def _contents(info: dict[str, object]) -> tuple[object, ...]:
    spaces = info["spaces"]
    assert isinstance(spaces, dict)
    return info["files"], info["segments"], info["vectors"], {name: s["vectors"] for name, s in spaces.items()}


def test_info_show_check_remove_on_a_shared_archive_as_on_a_local_index(
    folder: Path, pg_url: str, milvus_uri: str, tmp_path: Path
) -> None:
    """Maintenance commands take --catalog: the archive three workers filled reads like a one-worker local index."""
    for worker in [_start(_index_cmd(folder, pg_url, milvus_uri), tmp_path) for _ in range(3)]:
        _finish(worker)
    local = tmp_path / "local"
    code, _ = _cli(tmp_path, "index", str(folder), "--index", str(local), "--model", "test:hash", "--no-asr")
    assert code == 0

    _, shared_info = _cli(tmp_path, "info", "--catalog", pg_url)
    _, local_info = _cli(tmp_path, "info", "--index", str(local))
    assert shared_info.keys() == local_info.keys()
    assert _contents(shared_info) == _contents(local_info) and shared_info["files"] == N_VIDEOS
    assert shared_info["backend"] == "milvus" and shared_info["size_bytes"] is None  # its parts live on servers

    clip = str(folder / "clip_4.mp4")
    _, shared_show = _cli(tmp_path, "show", clip, "--catalog", pg_url)
    _, local_show = _cli(tmp_path, "show", clip, "--index", str(local))
    assert shared_show == local_show and shared_show["segments"]

    code, report = _cli(tmp_path, "check", "--catalog", pg_url)
    assert code == 0 and report["ok"] and report["files"] == N_VIDEOS and report["vectors"] == report["segments"]

    code, removed = _cli(tmp_path, "remove", clip, "--catalog", pg_url)
    assert code == 0 and removed["removed_files"] == 1 and removed["files"] == N_VIDEOS - 1
    code, report = _cli(tmp_path, "check", "--catalog", pg_url)
    assert code == 0 and report["ok"] and report["files"] == N_VIDEOS - 1 and report["vectors"] == report["segments"]
    code, repaired = _cli(tmp_path, "check", "--repair", "--catalog", pg_url)
    assert code == 0 and repaired["ok"] and repaired["repaired"] == []
    _, after = _cli(tmp_path, "info", "--catalog", pg_url)
    assert after["files"] == N_VIDEOS - 1 and after["vectors"] == after["segments"]["frame"]  # type: ignore[index]
