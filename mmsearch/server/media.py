"""Media and thumbnails, always looked up by catalog file id: a path sent by a client is never opened.

Thumbnails are JPEGs of the frame at t (a still image: the image itself), at most THUMB_MAX_SIDE pixels on
their long side, made on first request and cached on disk under the content hash, so a moved file keeps its
thumbnails and a changed file gets new ones. The cache lives in the index directory, or in the user cache
directory when the index is read-only, and is pruned to THUMB_CACHE_FILES files, oldest first.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mimetypes
import os
import threading
from pathlib import Path

from PIL import Image

from ..errors import BadInput, MMSearchError
from ..index.catalog import FileRecord, fs_path
from ..paths import display_path
from ..types import MediaKind

# Big enough for a sharp card on a retina laptop grid (cards are ~240 CSS px wide), small enough to be ~20 kB.
THUMB_MAX_SIDE = 480
THUMB_QUALITY = 80
# Requests for nearby times share one thumbnail: a tenth of a second is below what a card can show.
THUMB_TIME_STEP = 0.1
THUMB_CACHE_FILES = 5000
THUMB_DIR = "thumbnails"

log = logging.getLogger(__name__)


class NotFound(MMSearchError):
    """A file id, or the file behind it, that the server cannot serve (HTTP 404)."""


class NoPicture(NotFound):
    """An audio file: nothing to draw."""


def parse_file_id(raw: str) -> int:
    """Only decimal catalog ids; anything else (a path, `..`, an encoded traversal) is simply not a file id."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no file with id {raw!r}", hint="media are served by catalog id, as /api/search returns them")
    return int(raw)


def media_path(record: FileRecord | None, file_id: int) -> Path:
    if record is None:
        raise NotFound(f"no file with id {file_id} in the index", hint="ids come from /api/search results")
    path = fs_path(record)
    if not path.is_file():
        raise NotFound(
            f"file {file_id} ({display_path(path)}) is gone from disk since it was indexed",
            hint="run `mmsearch index` again, or `mmsearch remove` it",
        )
    return path


def media_type(path: Path) -> str:
    return mimetypes.guess_type(os.fsdecode(path.name))[0] or "application/octet-stream"


def thumbnail_cache_dir(index_dir: Path) -> Path:
    """`thumbnails/` in the index directory when it is writable, else a per-index folder in the user cache."""
    if os.access(index_dir, os.W_OK):
        return index_dir / THUMB_DIR
    import platformdirs

    key = hashlib.sha256(os.fsencode(index_dir.resolve())).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("mmsearch")) / THUMB_DIR / key


def thumbnail(record: FileRecord | None, file_id: int, t: float, cache_dir: Path) -> bytes:
    """The JPEG of `record` at `t` seconds (clamped into the file), from the cache when it is there."""
    path = media_path(record, file_id)
    assert record is not None  # media_path raised otherwise
    if record.kind is MediaKind.AUDIO:
        raise NoPicture(f"file {file_id} is audio: it has no picture")
    if record.kind is MediaKind.IMAGE:
        t = 0.0
    elif record.duration is not None:
        t = min(max(t, 0.0), max(record.duration - THUMB_TIME_STEP, 0.0))
    step = round(t / THUMB_TIME_STEP)
    cached = cache_dir / f"{record.sha256[:32]}-{step}-{THUMB_MAX_SIDE}.jpg"
    if cached.is_file():
        return cached.read_bytes()
    picture = _still(path) if record.kind is MediaKind.IMAGE else _frame_at(path, step * THUMB_TIME_STEP)
    data = _jpeg(picture)
    _store(cache_dir, cached, data)
    return data


def _still(path: Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except OSError as e:
        raise BadInput(f"{display_path(path)} is not a readable image ({e})") from e


def _frame_at(path: Path, t: float) -> Image.Image:
    """The first frame shown at or after t: seek to the keyframe before it, decode forward."""
    import av

    try:
        with av.open(os.fsdecode(path)) as container:
            stream = container.streams.video[0]
            base = stream.time_base or 1
            container.seek(int(t / base), stream=stream, backward=True)
            last = None
            for frame in container.decode(stream):
                last = frame
                if frame.time is not None and frame.time + 1e-3 >= t:
                    break
            if last is None:
                raise BadInput(f"{display_path(path)} has no frame at {t:.1f} s")
            return last.to_image()
    except (av.error.FFmpegError, IndexError) as e:
        raise BadInput(f"{display_path(path)}: cannot decode a frame at {t:.1f} s ({e})") from e


def _jpeg(picture: Image.Image) -> bytes:
    picture.thumbnail((THUMB_MAX_SIDE, THUMB_MAX_SIDE))
    out = io.BytesIO()
    picture.convert("RGB").save(out, format="JPEG", quality=THUMB_QUALITY)
    return out.getvalue()


def _store(cache_dir: Path, target: Path, data: bytes) -> None:
    """Write through a temp name (readers never see half a JPEG); an unwritable cache only costs speed."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        entries = sorted(cache_dir.glob("*.jpg"), key=lambda p: p.stat().st_mtime)
        for old in entries[: max(0, len(entries) - THUMB_CACHE_FILES)]:
            old.unlink(missing_ok=True)
    except OSError as e:
        log.info("thumbnail cache %s not written (%s)", cache_dir, e)
