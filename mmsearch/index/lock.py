"""The write lock of an index directory, on every OS: one writer at a time, refused at once, never waited for.

The lock is the OS's own (flock on Linux/macOS, LockFileEx on Windows, through filelock's `lock_descriptor`),
so it dies with its process: a crashed or killed writer never leaves the index locked. filelock's `FileLock` is
not used because it falls back to a lock *file* where flock is missing, and such a file outlives a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from filelock import lock_descriptor, unlock_descriptor

from ..errors import IndexLocked
from ..paths import LOCK_FILE, display_path


class WriteLock:
    """Held from `acquire` to `release` by the one writer of `index_dir`."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._file: IO[bytes] | None = None

    def acquire(self) -> None:
        """Take the lock or raise IndexLocked when another writer (any process, or another writer here) holds it."""
        handle = open(self.index_dir / LOCK_FILE, "ab")  # noqa: SIM115 - held until release()
        try:
            locked = lock_descriptor(handle.fileno(), blocking=False)
        except BaseException:
            handle.close()
            raise
        if not locked:
            handle.close()
            raise IndexLocked(
                f"index {display_path(self.index_dir)} is being written by another mmsearch process",
                hint="wait for it to finish; queries keep working meanwhile",
            )
        self._file = handle

    @property
    def held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            unlock_descriptor(self._file.fileno())
            self._file.close()
            self._file = None


def writer_active(index_dir: Path) -> bool:
    """Whether another process holds the write lock right now, asked without writing (a read-only index works)."""
    lock = index_dir / LOCK_FILE
    if not lock.exists():
        return False
    try:
        handle = open(lock, "rb")  # noqa: SIM115 - closed below; read access is enough to contend for the lock
    except OSError:
        return False  # cannot tell (unreadable lock file): check everything
    with handle:
        if not lock_descriptor(handle.fileno(), blocking=False):
            return True
        unlock_descriptor(handle.fileno())
    return False
