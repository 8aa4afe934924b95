"""Media and thumbnails, always looked up by catalog file id: a path sent by a client is never opened.

Thumbnails are JPEGs of the frame at t (a still image: the image itself), at most THUMB_MAX_SIDE pixels on
their long side, made on first request and cached on disk under the content hash, so a moved file keeps its
thumbnails and a changed file gets new ones. The cache lives in the index directory, or in the user cache
directory when the index is read-only, and is pruned to THUMB_CACHE_FILES files, oldest first.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from ..errors import BadInput, MMSearchError
from ..index.catalog import FileRecord, fs_path
from ..types import MediaKind

# Big enough for a sharp card on a retina laptop grid (cards are ~240 CSS px wide), small enough to be ~20 kB.
THUMB_MAX_SIDE = 480
THUMB_QUALITY = 80
# Requests for nearby times share one thumbnail: a tenth of a second is below what a card can show.
THUMB_TIME_STEP = 0.1
THUMB_CACHE_FILES = 5000
# A thumbnail is never cut from a bigger picture (a 64-megapixel camera still is 9248x6936): a larger one would
# take gigabytes to decode (a 20000x20000 PNG is 1.2 GB of RGB), far below Pillow's own bomb limit of 179 Mpx.
THUMB_SOURCE_PIXELS = 64_000_000
THUMB_DIR = "thumbnails"

log = logging.getLogger(__name__)


class NotFound(MMSearchError):
    """A file id, or the file behind it, that the server cannot serve (HTTP 404)."""


class NoPicture(NotFound):
    """An audio file: nothing to draw."""


class Changed(NotFound):
    """The indexed path no longer holds the file that was indexed (HTTP 410)."""


class TooLargeToDraw(MMSearchError):
    """An image with more pixels than a thumbnail is ever cut from (HTTP 422)."""


def parse_file_id(raw: str) -> int:
    """Only decimal catalog ids; anything else (a path, `..`, an encoded traversal) is simply not a file id."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no file with id {raw!r}", hint="media are served by catalog id, as /api/search returns them")
    return int(raw)


def media_path(record: FileRecord | None, file_id: int) -> Path:
    if record is None:
        raise NotFound(f"no file with id {file_id} in the index", hint="ids come from /api/search results")
    return fs_path(record)


@dataclass(frozen=True)
class Opened:
    """An indexed file opened for reading, checked to be the bytes that were indexed. `close()` when done."""

    fd: int
    stat: os.stat_result
    record: FileRecord

    def close(self) -> None:
        os.close(self.fd)

    def reader(self) -> BinaryIO:
        """A file object of its own over the same open file (closing it leaves `fd` open)."""
        return os.fdopen(os.dup(self.fd), "rb")

    @property
    def path_for_reopen(self) -> str:
        """A path that names this open file even if the indexed path is swapped meanwhile (Linux, macOS, BSD)."""
        for base in ("/proc/self/fd", "/dev/fd"):
            if os.path.isdir(base):
                return f"{base}/{self.fd}"
        return os.fsdecode(fs_path(self.record))


def open_indexed(record: FileRecord | None, file_id: int) -> Opened:
    """Open the file of `record` if it is still the regular file that was indexed (same size and mtime).

    A symlink at the indexed path is opened only when its target is exactly the indexed file (a file indexed
    through a symlink keeps working; /etc/passwd swapped in does not); a FIFO or device swapped in is never read.
    """
    path = media_path(record, file_id)
    assert record is not None  # media_path raised otherwise
    nonblock = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO swapped in must not wait for a writer
    try:
        try:
            fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_NOFOLLOW", 0))
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            fd = os.open(path, os.O_RDONLY | nonblock)
    except FileNotFoundError as e:
        raise NotFound(
            f"file {file_id} is gone from disk since it was indexed",
            hint="the index is updated by running `mmsearch index` again",
        ) from e
    except OSError as e:
        raise Changed(f"file {file_id} cannot be read since it was indexed ({e.strerror})") from e
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_size != record.size or st.st_mtime_ns != record.mtime_ns:
        os.close(fd)
        raise Changed(f"file {file_id} changed since indexing", hint=CHANGED_HINT)
    return Opened(fd, st, record)


CHANGED_HINT = "the index is updated by running `mmsearch index` again; until then the file is not served"

# Container formats as PyAV names them -> the MIME type of a file of that kind (video or audio).
CONTAINER_TYPES: dict[str, tuple[str, str]] = {
    "mov,mp4,m4a,3gp,3g2,mj2": ("video/mp4", "audio/mp4"),
    "matroska,webm": ("video/webm", "audio/webm"),
    "ogg": ("video/ogg", "audio/ogg"),
    "avi": ("video/x-msvideo", "audio/x-msvideo"),
    "mpegts": ("video/mp2t", "audio/mp2t"),
    "mpeg": ("video/mpeg", "audio/mpeg"),
    "flv": ("video/x-flv", "audio/x-flv"),
    "asf": ("video/x-ms-asf", "audio/x-ms-wma"),
    "mp3": ("audio/mpeg", "audio/mpeg"),
    "wav": ("audio/wav", "audio/wav"),
    "flac": ("audio/flac", "audio/flac"),
    "aac": ("audio/aac", "audio/aac"),
    "aiff": ("audio/aiff", "audio/aiff"),
}
UNKNOWN_TYPE = "application/octet-stream"


def media_type(opened: Opened) -> str:
    """The MIME type of what was indexed, read from the content (never from the file name): an image type that
    Pillow recognises, or video/... audio/... from the container PyAV opens; else application/octet-stream."""
    kind = opened.record.kind
    with opened.reader() as f:
        if kind is MediaKind.IMAGE:
            return _image_type(f)
        return _stream_type(f, kind)


class MediaTypes:
    """media_type() once per indexed content (by its hash): probing a container costs a few ms per request."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._known: dict[str, str] = {}
        self._lock = threading.Lock()

    def of(self, opened: Opened) -> str:
        key = f"{opened.record.kind.value}:{opened.record.sha256}"
        with self._lock:
            found = self._known.get(key)
        if found is None:
            found = media_type(opened)
            with self._lock:
                if len(self._known) >= self.LIMIT:
                    self._known.clear()
                self._known[key] = found
        return found


def _image_type(f: BinaryIO) -> str:
    try:
        with Image.open(f) as image:
            found = Image.MIME.get(image.format or "")
    except (OSError, Image.DecompressionBombError):
        return UNKNOWN_TYPE
    return found if found is not None and found.startswith("image/") and found != "image/svg+xml" else UNKNOWN_TYPE


def _stream_type(f: BinaryIO, kind: MediaKind) -> str:
    import av

    try:
        with av.open(f, mode="r") as container:
            name = container.format.name
    except (av.error.FFmpegError, OSError, ValueError):
        return UNKNOWN_TYPE
    types = CONTAINER_TYPES.get(name)
    if types is None:
        return UNKNOWN_TYPE
    return types[0] if kind is MediaKind.VIDEO else types[1]


def thumbnail_cache_dir(index_dir: Path) -> Path:
    """`thumbnails/` in the index directory when it is writable, else a per-index folder in the user cache."""
    if os.access(index_dir, os.W_OK):
        return index_dir / THUMB_DIR
    import platformdirs

    key = hashlib.sha256(os.fsencode(index_dir.resolve())).hexdigest()[:16]
    return Path(platformdirs.user_cache_dir("mmsearch")) / THUMB_DIR / key


def thumbnail(record: FileRecord | None, file_id: int, t: float, cache_dir: Path) -> bytes:
    """The JPEG of `record` at `t` seconds (clamped into the file), from the cache when it is there."""
    opened = open_indexed(record, file_id)
    try:
        return _thumbnail(opened, t, cache_dir)
    finally:
        opened.close()


def _thumbnail(opened: Opened, t: float, cache_dir: Path) -> bytes:
    record = opened.record
    if record.kind is MediaKind.AUDIO:
        raise NoPicture(f"file {record.id} is audio: it has no picture")
    if record.kind is MediaKind.IMAGE:
        t = 0.0
    elif record.duration is not None:
        t = min(max(t, 0.0), max(record.duration - THUMB_TIME_STEP, 0.0))
    step = round(t / THUMB_TIME_STEP)
    cached = cache_dir / f"{record.sha256[:32]}-{step}-{THUMB_MAX_SIDE}.jpg"
    if cached.is_file():
        return cached.read_bytes()
    with opened.reader() as f:
        picture = (
            _still(f, record.id) if record.kind is MediaKind.IMAGE else _frame_at(f, record.id, step * THUMB_TIME_STEP)
        )
    data = _jpeg(picture)
    _store(cache_dir, cached, data)
    return data


def _still(f: BinaryIO, file_id: int) -> Image.Image:
    try:
        with Image.open(f) as image:
            width, height = image.size
            if width * height > THUMB_SOURCE_PIXELS:
                raise TooLargeToDraw(f"file {file_id} is {width}x{height} pixels: too large to draw a thumbnail of")
            image.draft("RGB", (THUMB_MAX_SIDE, THUMB_MAX_SIDE))  # JPEG: decode at a reduced scale
            image.load()
            return image.convert("RGB")
    except Image.DecompressionBombError as e:
        raise TooLargeToDraw(f"file {file_id} is too large to draw a thumbnail of") from e
    except OSError as e:
        raise BadInput(f"file {file_id} is not a readable image ({e})") from e


def _frame_at(f: BinaryIO, file_id: int, t: float) -> Image.Image:
    """The first frame shown at or after t: seek to the keyframe before it, decode forward."""
    import av

    try:
        with av.open(f, mode="r") as container:
            stream = container.streams.video[0]
            base = stream.time_base or 1
            container.seek(int(t / base), stream=stream, backward=True)
            last = None
            for frame in container.decode(stream):
                last = frame
                if frame.time is not None and frame.time + 1e-3 >= t:
                    break
            if last is None:
                raise BadInput(f"file {file_id} has no frame at {t:.1f} s")
            return last.to_image()
    except (av.error.FFmpegError, IndexError) as e:
        raise BadInput(f"file {file_id}: cannot decode a frame at {t:.1f} s ({e})") from e


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
