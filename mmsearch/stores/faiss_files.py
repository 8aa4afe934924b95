"""The files of a FAISS store in an index directory: one file per vector generation, its checksum, and which
files no reader can need any more (the rules the writer, `check` and `check --repair` share).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from ..errors import REPAIR_HINT, CorruptIndex
from ..paths import VECTORS_PREFIX, VECTORS_SUFFIX, display_path

# Generation files older than the previous one stay this long after they stop being live, so that a reader
# that read the manifest just before a commit can still open the generation it names (a reader lease by age).
READER_GRACE_SECONDS = 15.0
CHECKSUM_ALGORITHM = "sha256"


def file_checksum(path: Path) -> str:
    """`sha256:HEX` of a file's bytes, as recorded in the manifest for every vector generation."""
    digest = hashlib.new(CHECKSUM_ALGORITHM)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return f"{CHECKSUM_ALGORITHM}:{digest.hexdigest()}"


def verify_checksum(path: Path, expected: str | None) -> None:
    """CorruptIndex when the file's bytes differ from what the manifest recorded (None: written before checksums)."""
    if expected is None or not path.is_file():
        return  # no checksum recorded, or no file: loading it says it is missing
    if file_checksum(path) != expected:
        raise CorruptIndex(
            f"vector file {display_path(path)} is damaged (its checksum differs from the manifest's)", hint=REPAIR_HINT
        )


def generation_file(index_dir: Path, generation: int) -> Path:
    return index_dir / f"{VECTORS_PREFIX}{generation:08d}{VECTORS_SUFFIX}"


def generation_of(path: Path) -> int | None:
    stem = path.name[len(VECTORS_PREFIX) :]
    if not path.name.startswith(VECTORS_PREFIX) or not stem.endswith(VECTORS_SUFFIX):
        return None
    number = stem[: -len(VECTORS_SUFFIX)]
    return int(number) if number.isdigit() else None


def stale_generation_files(index_dir: Path, live: int, grace: float = READER_GRACE_SECONDS) -> list[Path]:
    """Vector files no reader can need: older than the previous generation and out of the readers' grace period,
    newer than the live one (a crashed commit), and temporaries (the caller holds the write lock)."""
    stale = []
    now = time.time()
    for p in index_dir.glob(f"{VECTORS_PREFIX}*"):
        number = generation_of(p)
        if number is not None and live - 1 <= number <= live:
            continue
        if number is not None and number < live and grace > 0:
            try:
                if now - p.stat().st_mtime < grace:
                    continue  # a reader may have read the manifest that named it a moment ago
            except FileNotFoundError:
                continue
        stale.append(p)
    return stale
