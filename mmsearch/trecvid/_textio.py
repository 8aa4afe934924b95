"""Reading TRECVID's small text files (topics, msb, qrels, runs) with one kind of error for all of them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from mmsearch.errors import BadInput

# A file given by path, or its lines already in memory (tests, other tools' output).
TextSource = str | Path | Iterable[str]


def read_text(path: str | Path, what: str) -> str:
    """Whole file as text; `what` names the file's role in the error message ("qrels file", ...)."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"{what} not found: {p}")
    if p.is_dir():
        raise BadInput(f"{what} is a directory, expected a file: {p}")
    try:
        return p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read {what} {p}: {e}") from e


def source_lines(source: TextSource, what: str) -> list[str]:
    """Lines of a path or of an in-memory iterable of lines (a bare str is taken as a path)."""
    if isinstance(source, (str, Path)):
        return read_text(source, what).splitlines()
    return [line.rstrip("\r\n") for line in source]


def data_lines(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, whitespace-split fields) of lines that are neither blank nor `#` comments."""
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped.split()


def source_name(source: TextSource) -> str:
    return str(source) if isinstance(source, (str, Path)) else "<lines>"
