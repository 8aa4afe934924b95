"""Faults: kill -9 a real `mmsearch index` at many instants, then resume; readers during an uncommitted write;
a second writer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from index_state import TINY, catalog_segment_ids, index_state
from PIL import Image
from typer.testing import CliRunner

import mmsearch
from mmsearch.cli.app import app
from mmsearch.errors import CorruptIndex, IndexLocked
from mmsearch.index.catalog import Catalog
from mmsearch.index.check import check_index
from mmsearch.index.facade import Index
from mmsearch.search.searcher import Query, Searcher
from mmsearch.testing.media import Shot, Utterance, make_video
from mmsearch.types import MediaFile, MediaKind, Segment, SegmentKind

REPO = Path(mmsearch.__file__).resolve().parent.parent
KILLS = 15
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "navy")


def make_media(root: Path, images: int = 10, videos: int = 6) -> Path:
    """Distinct noise images and 3 s three-shot clips, all tiny, in a folder with a subfolder."""
    rng = np.random.default_rng(0)
    (root / "clips").mkdir(parents=True)
    for i in range(images):
        pixels = rng.integers(0, 255, (TINY[1], TINY[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"img{i:02d}.png")
    for i in range(videos):
        shots = [Shot(COLOURS[i % 8], 1), Shot("testsrc", 1), Shot(COLOURS[(i + 3) % 8], 1)]
        make_video(root / "clips" / f"v{i}.mp4", shots, size=TINY, fps=10, audio=False)
    return root


def index_command(media: Path, index_dir: Path, asr: tuple[str, ...] = ("--no-asr",)) -> list[str]:
    return [
        sys.executable, "-m", "mmsearch", "index", str(media), "--index", str(index_dir),
        "--model", "test:hash", *asr, "--commit-interval", "0", "--json",
    ]  # fmt: skip


def spawn(cmd: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def timed_run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = spawn(cmd)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return time.perf_counter() - t0


def assert_committed_state_is_consistent(index_dir: Path) -> int:
    """After a kill: nothing committed yet, or a queryable state whose vectors match the catalog exactly.
    Returns how many files that state holds."""
    if not (index_dir / "catalog.sqlite").exists():
        return 0
    try:
        catalog = Catalog.open(index_dir / "catalog.sqlite", readonly=True)
    except CorruptIndex as e:
        assert "stopped before committing" in e.message
        return 0
    try:
        committed = "vectors_generation" in catalog.manifest()
    finally:
        catalog.close()
    if not committed:
        return 0  # killed while creating the index, before its first commit
    report = check_index(index_dir)
    # A kill between writing a generation file and committing the manifest leaves that file behind; the next
    # writer deletes it. Nothing else may be wrong.
    assert {p.code for p in report.problems} <= {"stray-file"}, report.problems
    state = index_state(index_dir)
    assert list(state.vector_ids) == catalog_segment_ids(index_dir)
    return len(state.files)


def committed_files(index_dir: Path) -> int:
    if not (index_dir / "catalog.sqlite").exists():
        return 0
    try:
        catalog = Catalog.open(index_dir / "catalog.sqlite", readonly=True)
    except CorruptIndex:  # created, but its schema not committed yet
        return 0
    try:
        return catalog.file_count()
    finally:
        catalog.close()


def run_and_kill(cmd: list[str], index_dir: Path, rng: random.Random, startup: float) -> bool:
    """Start an index run and SIGKILL it: during start-up now and then, else once it has committed a random
    number of further files, plus a random fraction of a commit. Returns False if the run finished first."""
    proc = spawn(cmd)
    if rng.random() < 0.2:
        time.sleep(rng.uniform(0.05, startup))
    else:
        target = committed_files(index_dir) + rng.randint(0, 3)
        while proc.poll() is None and committed_files(index_dir) < target:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))
    if proc.poll() is not None:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        return False
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    return True


def kill_resume_compare(tmp_path: Path, media: Path, kills_wanted: int, asr: tuple[str, ...]) -> list[int]:
    """Kill runs into new indexes until `kills_wanted` kills; after each cycle, resume to completion and compare
    with a fresh index of the same media. Returns the files committed at each kill."""
    fresh = tmp_path / "fresh"
    timed_run(index_command(media, fresh, asr))
    startup = timed_run(index_command(media, fresh, asr))  # an unchanged rerun: start-up without work
    want = index_state(fresh)
    assert want.vectors == want.segment_count > 0
    rng = random.Random(3)
    kills, cycles = 0, 0
    held: list[int] = []
    while kills < kills_wanted:
        cycles += 1  # a new index each time a run gets to finish before its kill
        index_dir = tmp_path / f"killed-{cycles}"
        while kills < kills_wanted and run_and_kill(index_command(media, index_dir, asr), index_dir, rng, startup):
            kills += 1
            held.append(assert_committed_state_is_consistent(index_dir))
        timed_run(index_command(media, index_dir, asr))  # resume to completion
        got = index_state(index_dir)
        assert got.files == want.files
        assert got.vectors == want.vectors and list(got.vector_ids) == catalog_segment_ids(index_dir)
        assert check_index(index_dir).problems == []
    print(f"{kills} kills over {cycles} cycle(s); files committed at each kill: {held}")
    assert any(0 < n < len(want.files) for n in held), held  # kills landed mid-way, not only at start-up
    return held


@pytest.mark.slow
def test_kill_9_at_many_instants_then_resume_equals_fresh_index(tmp_path: Path) -> None:
    media = make_media(tmp_path / "media", images=20, videos=8)
    held = kill_resume_compare(tmp_path, media, KILLS, ("--no-asr",))
    assert len(held) == KILLS and index_state(tmp_path / "fresh").segment_count == 20 + 8 * 3


@pytest.mark.slow
def test_kill_9_with_speech_then_resume_equals_fresh_index(tmp_path: Path, asr_model_dir: Path) -> None:
    media = make_media(tmp_path / "media", images=3, videos=0)
    for i, words in enumerate(("the red fox jumped", "seven purple whales sing", "a budget meeting at noon")):
        make_video(media / "clips" / f"talk{i}.mp4", [Shot(COLOURS[i], 3)], [Utterance(words, 0.5)], size=TINY)
    kill_resume_compare(tmp_path, media, 5, ("--asr-model", str(asr_model_dir)))
    speech = sum(s for _, _, s, _ in index_state(tmp_path / "fresh").files.values())
    assert speech >= 3


def _fake_file(path: Path, kind: MediaKind = MediaKind.IMAGE) -> MediaFile:
    path.write_bytes(path.name.encode())
    st = path.stat()
    return MediaFile(path, kind, st.st_size, st.st_mtime_ns)


def test_queries_see_last_commit_while_a_writer_holds_uncommitted_work(tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    writer = Index.write(index_dir, "test:hash", untrained=True, device="cpu")
    vectors = np.eye(64, dtype=np.float32)
    try:
        writer.open_vectors(lambda: 64)
        first = _fake_file(tmp_path / "first.png")
        writer.add_file(first, "sha-first", [Segment(SegmentKind.IMAGE, None, None)], vectors[:1])
        writer.commit()
        second = _fake_file(tmp_path / "second.png")
        writer.add_file(second, "sha-second", [Segment(SegmentKind.IMAGE, None, None)], vectors[1:2])
        # The writer now holds uncommitted work; a reader sees exactly the last commit.
        searcher = Searcher.open(index_dir, device="cpu")
        try:
            hits = searcher.search_vector(vectors[1], 10)
            assert [h.path for h in hits] == [str(tmp_path / "first.png")]
            assert searcher.catalog.file_count() == 1 and searcher.store.ntotal == 1
        finally:
            searcher.close()
        # A second writer is refused while the first holds the lock, in the library and on the command line.
        with pytest.raises(IndexLocked):
            Index.write(index_dir, "test:hash", untrained=True)
        result = CliRunner().invoke(
            app, ["index", str(tmp_path / "first.png"), "--index", str(index_dir), "--model", "test:hash"]
        )
        assert result.exit_code == 2 and "being written by another mmsearch process" in result.stderr
        writer.commit()
    finally:
        writer.close()
    searcher = Searcher.open(index_dir, device="cpu")
    try:
        moments = searcher.search(Query(text="anything", top_k=5, fusion="rrf"))  # rrf: every unit, however weak
        assert {m.path for m in moments} == {str(tmp_path / "first.png"), str(tmp_path / "second.png")}
    finally:
        searcher.close()


def test_ctrl_c_commits_finished_files_and_exits_130(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) mid-run: exit code 130, the files finished so far are committed, the index checks clean,
    and a rerun completes to what a fresh index holds."""
    media = make_media(tmp_path / "media", images=10, videos=30)  # several seconds of work
    index_dir = tmp_path / "idx"
    cmd = index_command(media, index_dir)
    cmd[cmd.index("--commit-interval") + 1] = "3600"  # only the interrupt handler commits
    proc = spawn(cmd)
    deadline = time.time() + 60
    # Wait until the run is past start-up (the catalog exists and files are being embedded).
    while proc.poll() is None and not (index_dir / "vectors-00000001.faiss").exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "interrupted" in err.decode()
    assert_committed_state_is_consistent(index_dir)
    assert check_index(index_dir).problems == []
    timed_run(cmd)
    fresh = tmp_path / "fresh"
    timed_run(index_command(media, fresh))
    got, want = index_state(index_dir), index_state(fresh)
    assert got.files == want.files and got.vectors == want.vectors


def test_interrupt_keeps_exactly_the_finished_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C lands after the third file is stored: those three are committed, nothing else, exit code 130."""
    from mmsearch.cli import ui

    media = make_media(tmp_path / "media", images=8, videos=0)
    done: list[str] = []

    def interrupt_after_three(self: object, path: str) -> None:
        done.append(path)
        if len(done) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(ui.ProgressReporter, "file_done", interrupt_after_three)
    index_dir = tmp_path / "idx"
    result = CliRunner().invoke(
        app, ["index", str(media), "--index", str(index_dir), "--model", "test:hash", "--no-asr",
              "--commit-interval", "3600"],
    )  # fmt: skip
    assert result.exit_code == 130 and "interrupted" in result.stderr
    state = index_state(index_dir)
    assert sorted(k.decode() for k in state.files) == sorted(done) and len(done) == 3
    assert state.vectors == 3 and check_index(index_dir).problems == []
