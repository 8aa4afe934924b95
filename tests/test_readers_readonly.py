"""Readers of an index they cannot write: another user, a read-only mount, a full disk; and a commit that runs
out of space (one line, exit 2, nothing left behind but the last commit).

"Another user" is real to the kernel: the index is chowned to nobody:nogroup (755 directory, 644 files) and the
CLI runs as root with every capability dropped (`setpriv --bounding-set=-all`), so no CAP_DAC_OVERRIDE lets it
write what it does not own. (`runuser -u nobody` cannot be used here: the interpreter lives under /root, 0700.)
Mounts (a read-only bind, a small tmpfs) need root and CAP_SYS_ADMIN; the tests skip where they are not allowed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.index.facade import Index
from mmsearch.models.registry import load_embedder
from mmsearch.types import MediaFile, MediaKind, Segment, SegmentKind

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # each test runs the CLI in 5-7 fresh processes
SPEECH = ["the dog barks at the mail carrier", "rain falls on the quiet harbour", "a drum solo starts the show"]


def cli(args: list[str], privileged: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    prefix = [] if privileged else ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "mmsearch", *args], env=env, capture_output=True, text=True, cwd=cwd
    )


def speech_index(index_dir: Path, folder: Path) -> None:
    """An index with speech segments (what the keyword channel searches), written through the real writer."""
    embedder = load_embedder("test:hash", "cpu")
    folder.mkdir(parents=True, exist_ok=True)
    with Index.write(index_dir, "test:hash", untrained=True, device="cpu") as writer:
        writer.open_vectors(lambda: embedder.dim)
        for i, text in enumerate(SPEECH):
            path = folder / f"talk-{i}.wav"
            path.write_bytes(b"RIFF")  # the catalog needs a path; the tests only read the index
            media = MediaFile(path, MediaKind.AUDIO, 4, i, has_audio=True, duration=5.0)
            writer.add_file(
                media, f"sha-{i}", [Segment(SegmentKind.SPEECH, 0.0, 5.0, text)], embedder.embed_texts([text])
            )


def capabilities_can_be_dropped() -> bool:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(["setpriv", "--bounding-set=-all", "--inh-caps=-all", "true"], capture_output=True)
    return probe.returncode == 0


def give_to_nobody(index_dir: Path) -> None:
    for path in [index_dir, *index_dir.rglob("*")]:
        os.chown(path, 65534, 65534)
        path.chmod(0o755 if path.is_dir() else 0o644)


def assert_reads(index_dir: Path, privileged: bool) -> None:
    words = cli(["query", "dog barks", "--channel", "keyword", "--json", "--index", str(index_dir)], privileged)
    assert words.returncode == 0, words.stderr
    assert json.loads(words.stdout)["results"][0]["text"] == SPEECH[0]
    for args in (["query", "harbour rain", "--json"], ["info", "--json"], ["check", "--json"]):
        proc = cli([*args, "--index", str(index_dir)], privileged)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
    info = json.loads(cli(["info", "--json", "--index", str(index_dir)], privileged).stdout)
    assert info["files"] == 3 and info["vectors"] == 3


@pytest.mark.parametrize("cache", ["no-cache", "cache-written-by-owner"])
def test_another_user_queries_an_index_it_cannot_write(tmp_path: Path, cache: str) -> None:
    if not capabilities_can_be_dropped():
        pytest.skip("needs root and setpriv to run as a user without write access")
    index_dir = tmp_path / "idx"
    speech_index(index_dir, tmp_path / "media")
    if cache == "cache-written-by-owner":
        proc = cli(["query", "drum", "--channel", "keyword", "--index", str(index_dir)])
        assert proc.returncode == 0 and list(index_dir.glob("bm25-*")), proc.stderr
    give_to_nobody(index_dir)
    before = sorted(index_dir.rglob("*"))
    assert_reads(index_dir, privileged=False)
    assert sorted(index_dir.rglob("*")) == before  # the reader wrote nothing (it could not)


@contextlib.contextmanager
def mounted(args: list[str], target: Path) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", *args, str(target)], capture_output=True).returncode != 0:
        pytest.skip("mount is not allowed here")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


def test_read_only_bind_mount(tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    speech_index(index_dir, tmp_path / "media")
    view = tmp_path / "ro-view"
    with mounted(["--bind", str(index_dir)], view):
        assert subprocess.run(["mount", "-o", "remount,bind,ro", str(view)]).returncode == 0
        assert not os.access(view, os.W_OK)
        assert_reads(view, privileged=True)


def fill(directory: Path) -> None:
    """Write until the filesystem says ENOSPC."""
    with contextlib.suppress(OSError), open(directory / "filler", "wb") as fh:
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()


def test_queries_on_a_full_disk(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    with mounted(["-t", "tmpfs", "-o", "size=4m", "tmpfs"], disk):
        index_dir = disk / "idx"
        speech_index(index_dir, tmp_path / "media")
        fill(disk)
        assert shutil.disk_usage(disk).free < 4096
        assert_reads(index_dir, privileged=True)


def test_disk_full_during_a_commit_is_one_line_and_leaves_the_last_commit(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    rng = np.random.default_rng(0)
    for i in range(250):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(media / f"{i:03d}.png")
    disk = tmp_path / "disk"
    with mounted(["-t", "tmpfs", "-o", "size=1m", "tmpfs"], disk):
        index_dir = disk / "idx"
        args = [
            "index",
            str(media),
            "--index",
            str(index_dir),
            "--model",
            "test:hash",
            "--no-asr",
            "--commit-interval",
            "0",
        ]
        proc = cli(args)
        lines = [line for line in proc.stderr.splitlines() if not line.startswith(("WARNING: model", " "))]
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len([x for x in lines if x.startswith("error:")]) == 1
        assert "is full" in proc.stderr
        assert not list(index_dir.glob("*.tmp")) and not list(index_dir.glob(".bm25-*"))
        info = json.loads(cli(["info", "--json", "--index", str(index_dir)]).stdout)
        assert 0 < info["files"] < 250 and info["vectors"] == info["files"]
        # Nothing but the last commit: its generation file and the previous one, no newer file.
        names = sorted(p.name for p in index_dir.glob("vectors-*"))
        assert names[-1] == f"vectors-{info['generation']:08d}.faiss" and len(names) <= 2
        check = cli(["check", "--json", "--index", str(index_dir)])
        assert check.returncode == 0 and json.loads(check.stdout)["problems"] == [], check.stdout
