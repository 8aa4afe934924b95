"""Uploaded query images, kept by their SHA-256 so that an image search has a URL (`/?image=SHA`) like any other.

They live beside the thumbnails (in the index directory, or the user cache when the index is read-only), in
QUERY_IMAGE_DIR, pruned to QUERY_IMAGE_FILES files, oldest first.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import MMSearchError
from .media import NotFound, thumbnail_cache_dir

IMAGE_HEADER = "X-Mmsearch-Image"  # the SHA-256 an image search was stored under: the page puts it in the URL
QUERY_IMAGE_DIR = "query-images"
QUERY_IMAGE_FILES = 500
UPLOAD_CHUNK = 1 << 16
_SHA = re.compile(r"^[0-9a-f]{64}$")


class UploadTooLarge(MMSearchError):
    """An uploaded query image over the size limit (HTTP 413)."""


class Upload(Protocol):
    file: BinaryIO


def query_image_dir(index_dir: Path) -> Path:
    return thumbnail_cache_dir(index_dir).parent / QUERY_IMAGE_DIR


def store_query_image(upload: Upload, limit: int, folder: Path) -> Path:
    """Save the upload as folder/SHA (read in chunks, at most `limit` bytes); the stored path."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    handle, name = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := upload.file.read(UPLOAD_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise UploadTooLarge(f"the image is larger than {limit} bytes", hint="send a smaller image")
                digest.update(chunk)
                out.write(chunk)
        target = folder / digest.hexdigest()
        os.replace(name, target)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    _prune(folder)
    return target


def stored_query_image(sha: str, folder: Path) -> Path:
    """The image stored under `sha`; NotFound when it is not (or no longer) kept."""
    if not _SHA.match(sha):
        raise NotFound(f"{sha[:80]!r} is not the SHA-256 of an uploaded image", hint="search by the image again")
    path = folder / sha
    if not path.is_file():
        raise NotFound("that query image is no longer stored on this server", hint="search by the image again")
    return path


def _prune(folder: Path) -> None:
    kept = sorted((p for p in folder.iterdir() if _SHA.match(p.name)), key=lambda p: p.stat().st_mtime)
    for old in kept[: max(0, len(kept) - QUERY_IMAGE_FILES)]:
        old.unlink(missing_ok=True)
