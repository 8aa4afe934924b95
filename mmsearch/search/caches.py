"""Per-commit caches beside the catalog: a directory `PREFIXNNNNNNNN/` per vector generation (keyword index,
segment table), written to a temporary name and renamed, so a reader never sees half of one.

The cache takes the index directory's permissions, so a cache written by one user serves every user who can read
the index; readers that cannot write the directory keep what they built in memory. Older generations' caches are
removed when a newer one is written (zero-padded numbers: string order is generation order).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def cache_dir(index_dir: Path, prefix: str, generation: int) -> Path:
    return index_dir / f"{prefix}{generation:08d}"


def write_cache(index_dir: Path, prefix: str, generation: int, fill: Callable[[Path], None]) -> bool:
    """Call `fill(tmp_dir)`, then publish it as this generation's cache; False when it could not be written."""
    if not os.access(index_dir, os.W_OK):
        return False
    target = cache_dir(index_dir, prefix, generation)
    tmp = Path(tempfile.mkdtemp(prefix=f".{prefix}", dir=index_dir))
    try:
        fill(tmp)
        # mkdtemp makes it 0700: give it the index's own permissions, so that every reader of the index can use it.
        mode = index_dir.stat().st_mode & 0o777
        tmp.chmod(mode)
        for part in tmp.iterdir():
            part.chmod(mode & 0o666)
        tmp.rename(target)
    except OSError as e:  # another reader got there first, or the disk is full: the cache is optional
        log.info("cache %s not written (%s)", target.name, e)
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    for old in index_dir.glob(f"{prefix}*"):
        number = old.name[len(prefix) :]
        if number.isdigit() and old.name < target.name:
            shutil.rmtree(old, ignore_errors=True)
    return True
