"""One resolver for where data lives, so the CLI, library and tests agree (env var first, like llm's user_dir)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .errors import UsageError

INDEX_ENV = "MMSEARCH_INDEX"
DEFAULT_INDEX_DIR = Path("indexes") / "default"

CATALOG_FILE = "catalog.sqlite"
LOCK_FILE = "write.lock"
VECTORS_PREFIX = "vectors-"
VECTORS_SUFFIX = ".faiss"
BM25_PREFIX = "bm25-"  # keyword-index caches, one per vector generation (search/keyword.py)
SEGMENT_TABLE_PREFIX = "segments-"  # segment-table caches, one per vector generation (search/segment_table.py)


def resolve_index_dir(explicit: Path | str | None = None) -> Path:
    """`--index DIR` wins, then $MMSEARCH_INDEX, then ./indexes/default."""
    if explicit:
        return _expand(Path(explicit))
    env = os.environ.get(INDEX_ENV)
    if env:
        return _expand(Path(env))
    return DEFAULT_INDEX_DIR


def _expand(path: Path) -> Path:
    try:
        return path.expanduser()
    except RuntimeError as e:  # `~nouser/x`: no such user, so no home directory to expand
        raise UsageError(f"index directory {display_path(path)}: {e}", hint="give it without ~USER") from e


def display_path(path: Path | str) -> str:
    """A printable form of any path, also when its bytes are not valid UTF-8."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", errors="backslashreplace")


def path_key(path: Path | str) -> bytes:
    """The exact bytes of a path: the catalog's identity for a file, safe for non-UTF-8 names."""
    return os.fsencode(path)


def is_under(path: bytes, roots: Sequence[bytes]) -> bool:
    """Whether a catalog path key is one of `roots` or lies below one of them (all as bytes)."""
    return any(path == r or path.startswith(r.rstrip(b"/") + b"/") for r in roots)
