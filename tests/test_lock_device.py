"""The write lock (index/lock.py: the OS lock through filelock, so also on Windows) and `--device` resolution."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmsearch.errors import IndexLocked, UsageError
from mmsearch.index.lock import WriteLock, writer_active
from mmsearch.models import hub

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mmsearch.index.lock import WriteLock
    lock = WriteLock(Path(sys.argv[1]))
    lock.acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_second_writer_is_refused_at_once_and_can_lock_after_release(tmp_path: Path) -> None:
    first, second = WriteLock(tmp_path), WriteLock(tmp_path)
    first.acquire()
    with pytest.raises(IndexLocked, match="being written by another mmsearch process"):
        second.acquire()
    assert first.held and not second.held and writer_active(tmp_path)
    first.release()
    assert not writer_active(tmp_path)
    second.acquire()
    second.release()


def test_lock_dies_with_its_process(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert writer_active(tmp_path)
        with pytest.raises(IndexLocked):
            WriteLock(tmp_path).acquire()
    finally:
        holder.kill()  # no release(): the OS must drop the lock with the process
        holder.wait()
    assert not writer_active(tmp_path)
    lock = WriteLock(tmp_path)
    lock.acquire()
    lock.release()


def test_writer_probe_needs_only_read_access(tmp_path: Path) -> None:
    lock = WriteLock(tmp_path)
    lock.acquire()
    (tmp_path / "write.lock").chmod(0o444)  # a read-only index: the probe must still see the writer
    try:
        assert writer_active(tmp_path)
    finally:
        lock.release()
    assert not writer_active(tmp_path)
    assert not writer_active(tmp_path / "no-index-here")


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hub, "mps_works", lambda: True)
    assert hub.resolve_device("auto") == "mps"
    assert hub.resolve_device("auto", allow_mps=False) == "cpu"  # Whisper (CTranslate2) has no MPS kernels
    assert hub.resolve_device("mps", allow_mps=False) == "cpu"
    monkeypatch.setattr(hub, "mps_works", lambda: False)
    assert hub.resolve_device("auto") == "cpu"
    with pytest.raises(UsageError, match="no working Apple MPS backend"):
        hub.resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert hub.resolve_device("auto") == "cuda" and hub.resolve_device("gpu") == "cuda"
    with pytest.raises(UsageError, match="--device must be one of"):
        hub.resolve_device("tpu")
