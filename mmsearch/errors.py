"""Domain errors. Library code raises these; only the CLI turns them into one-line messages and exit codes.

Exit codes (documented in README): 0 success, 1 some inputs failed but the rest was indexed,
2 usage error or unusable input (missing index, empty query, unreadable image, unavailable weights, ...).
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2


class MMSearchError(Exception):
    """Base of every error mmsearch reports to the user; `hint` says what to do about it."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(MMSearchError):
    """Bad options or arguments."""


class PersonNotFound(UsageError):
    """No person with that id or name in the index."""


class IndexNotFound(MMSearchError):
    """No index at the resolved location."""


class IndexLocked(MMSearchError):
    """Another writer holds the index."""


class CorruptIndex(MMSearchError):
    """Index files are unreadable or disagree with each other."""


class DiskFull(MMSearchError):
    """A commit could not be written for lack of space; the last commit is intact."""


class SchemaTooNew(MMSearchError):
    """The index was written by a newer mmsearch."""


class ModelMismatch(MMSearchError):
    """The query asks for a model other than the one that built the index."""


class WeightsUnavailable(MMSearchError):
    """Model weights cannot be had (offline, missing file, unknown tag)."""


class UnknownModel(MMSearchError):
    """A model spec names no known architecture, family or backend."""


class BadInput(MMSearchError):
    """A single input (file, image) cannot be used."""


class MediaError(MMSearchError):
    """Decoding or probing a media file failed; recorded per file during indexing."""

    exit_code = EXIT_PARTIAL


class BackendUnavailable(MMSearchError):
    """The vector backend (a Milvus server or milvus-lite file) cannot be reached or lacks the index's data."""


class MissingExtra(MMSearchError):
    """A feature needs an optional package that is not installed (the hint names the pip extra)."""


# What every "the index is damaged" message suggests.
REPAIR_HINT = "`mmsearch check --repair` drops what cannot be read; the next `mmsearch index` re-embeds it"


def is_disk_full(e: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, or faiss' and SQLite's words for it."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e).lower()
    return "no space left" in text or "disk is full" in text or "disk quota" in text
