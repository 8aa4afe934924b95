"""Discover stage: walk the given paths and classify each file as video, audio or image by probing its content.

Extensions only decide how loudly we complain: a file with a media extension that does not probe as media is a
failure (reported), any other file that does not probe as media is skipped quietly (README.txt, .DS_Store).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MediaError
from ..paths import CATALOG_FILE, display_path
from ..types import FileFailure, MediaFile, MediaKind

VIDEO_EXTS = frozenset(
    [".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp", ".ogv"]
)
AUDIO_EXTS = frozenset([".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma", ".aiff", ".aif"])
IMAGE_EXTS = frozenset([".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"])
MEDIA_EXTS = VIDEO_EXTS | AUDIO_EXTS | IMAGE_EXTS

# ffmpeg demuxers that read a single still picture; PyAV reports them as one-frame "video".
IMAGE_DEMUXERS = ("image2", "_pipe", "gif", "webp")


@dataclass(frozen=True)
class Discovery:
    files: tuple[MediaFile, ...]
    failed: tuple[FileFailure, ...]
    skipped: tuple[str, ...]
    roots: tuple[Path, ...]


# Probes many paths at once: each path maps to its MediaFile or the reason it is not media. The runner passes
# one that probes in worker processes, so a decoder crash while probing costs only that file.
Prober = Callable[[Sequence[Path]], list["MediaFile | str"]]


def probe_here(paths: Sequence[Path]) -> list[MediaFile | str]:
    """Probe in this process (tests, tools); `ingest.workers` probes in isolated processes."""
    out: list[MediaFile | str] = []
    for path in paths:
        try:
            out.append(probe(path))
        except MediaError as e:
            out.append(e.message)
    return out


def discover(paths: Sequence[Path], prober: Prober = probe_here) -> Discovery:
    failed: list[FileFailure] = []
    roots: list[Path] = []
    candidates: list[Path] = []
    for root in paths:
        if not os.path.lexists(root):
            failed.append(FileFailure(display_path(root), "no such file or directory"))
            continue
        roots.append(Path(os.path.abspath(root)))
        for path, error in _walk(Path(os.path.abspath(root))):
            if error:
                failed.append(FileFailure(display_path(path), error))
            else:
                candidates.append(path)
    # Overlapping arguments (`media media/sub`, `media ./media`, a file given twice) name one file once.
    candidates = list(dict.fromkeys(candidates))
    files: list[MediaFile] = []
    skipped: list[str] = []
    for path, result in zip(candidates, prober(candidates), strict=True):
        if isinstance(result, MediaFile):
            files.append(result)
        elif path.suffix.lower() in MEDIA_EXTS:
            failed.append(FileFailure(display_path(path), result))
        else:
            skipped.append(display_path(path))
    files.sort(key=lambda f: os.fsencode(f.path))
    return Discovery(tuple(files), tuple(dict.fromkeys(failed)), tuple(skipped), tuple(roots))


def _walk(root: Path) -> Iterator[tuple[Path, str | None]]:
    """Yield (regular file, None) or (path, reason) for what cannot be read; follows symlinks but not loops."""
    seen_dirs: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            st = path.stat()
        except FileNotFoundError:
            yield path, "broken symlink" if path.is_symlink() else "file vanished"
            continue
        except OSError as e:
            yield path, _os_reason(e)
            continue
        if stat.S_ISDIR(st.st_mode):
            if (path / CATALOG_FILE).exists():
                continue  # an mmsearch index (e.g. ./indexes/default under `mmsearch index .`) is never media
            if (st.st_dev, st.st_ino) in seen_dirs:
                yield path, "symlink loop (directory already visited)"
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            try:
                children = sorted(os.scandir(path), key=lambda d: os.fsencode(d.name), reverse=True)
            except OSError as e:
                yield path, _os_reason(e)
                continue
            stack.extend(Path(c.path) for c in children if not c.name.startswith("."))
        elif stat.S_ISREG(st.st_mode):
            if not os.access(path, os.R_OK):
                yield path, "permission denied"
            else:
                yield path, None


def _os_reason(e: OSError) -> str:
    if e.errno == 40:  # ELOOP
        return "symlink loop"
    return e.strerror or str(e)


def probe(path: Path) -> MediaFile:
    """Classify by content: Pillow for stills, then PyAV for streams. Raises MediaError if neither reads it."""
    st = path.stat()
    if st.st_size == 0:
        raise MediaError("empty file (0 bytes)")
    if _is_image(path):
        return MediaFile(path, MediaKind.IMAGE, st.st_size, st.st_mtime_ns)
    return _probe_streams(path, st.st_size, st.st_mtime_ns)


def _is_image(path: Path) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            # Animated GIF/WebP are short videos to a user, but we index their first frame as a still.
            return img.format is not None
    except Image.DecompressionBombError:
        return True  # an image all the same; decode refuses it with its size as the reason
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def _probe_streams(path: Path, size: int, mtime_ns: int) -> MediaFile:
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            # Cover art in an mp3/m4a is an "attached picture" video stream: the file is audio all the same.
            video = [s for s in container.streams.video if s.codec_context is not None and not _attached_pic(s)]
            audio = list(container.streams.audio)
            duration = container.duration / 1_000_000 if container.duration else None
            start = max(0.0, container.start_time / 1_000_000) if container.start_time else 0.0
            fmt = container.format.name or ""
            if video and any(d in fmt for d in IMAGE_DEMUXERS):
                raise MediaError("not a readable image (contents do not match any supported image format)")
            if not video and not audio:
                raise MediaError("no video or audio stream")
            first = _first_frame(container, video[0] if video else audio[0])
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise MediaError(f"not a readable media file ({_short(e)})") from e
    if first is None:
        raise MediaError("not a readable media file (no frame of its streams decodes)")
    if not video:
        return MediaFile(path, MediaKind.AUDIO, size, mtime_ns, True, duration, start_time=start)
    cc = video[0].codec_context
    rotation = int(getattr(first, "rotation", 0) or 0) % 360
    return MediaFile(path, MediaKind.VIDEO, size, mtime_ns, bool(audio), duration, cc.width, cc.height, rotation, start)


def _attached_pic(stream: Any) -> bool:
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


# Random bytes named .mp3 still "open" (the mp3 demuxer resyncs on any 0xFFE pattern); a real file decodes a
# frame within its first packets.
PROBE_PACKETS = 64


def _first_frame(container: Any, stream: Any) -> Any | None:
    """The first decodable frame of `stream` (its side data carries the display rotation), or None."""
    import av

    for n, packet in enumerate(container.demux(stream)):
        if n >= PROBE_PACKETS:
            return None
        try:
            frames = packet.decode()
        except av.FFmpegError:
            continue
        if frames:
            return frames[0]
    return None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]
