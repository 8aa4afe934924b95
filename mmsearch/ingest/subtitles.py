"""Subtitles stage: cues of sidecar files and of embedded text subtitle streams, with their times and language.

Sidecars sit next to the media file and share its name: `NAME.srt`, `NAME.vtt`, `NAME.ass`, `NAME.ssa`, `NAME.sub`
(MicroDVD), and the same with a language before the suffix (`NAME.en.srt`, `NAME.pt-BR.vtt`, `NAME.fra.srt`).
pysubs2 reads them. Embedded streams (subrip, ass/ssa, mov_text, webvtt in mp4/mkv) are decoded with PyAV;
bitmap subtitles (DVD, PGS) carry no text and are skipped.

Times: an embedded cue's time is its packet's presentation time (the container's timeline, like every time
mmsearch reports); a sidecar's cue times are taken as written, which is what a browser's `<track>` does with
them on the same `<video>`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MediaError
from .streams import decoder_reason

log = logging.getLogger(__name__)

SIDECAR_SUFFIXES = (".srt", ".vtt", ".ass", ".ssa", ".sub")
# Text subtitle codecs PyAV decodes to dialogue text.
TEXT_CODECS = frozenset({"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"})
# A language tag in a sidecar's name: 2-3 letters, optionally a region or script (en, eng, pt-BR, zh-Hans).
_LANG_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,4})?$")
# ISO 639-2 (what mp4/mkv streams are tagged with) to ISO 639-1 (what Whisper reports), for the usual languages;
# other three-letter codes are kept as they are.
ISO_639_2 = {
    "eng": "en", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "spa": "es", "ita": "it", "por": "pt",
    "nld": "nl", "dut": "nl", "rus": "ru", "pol": "pl", "ukr": "uk", "ces": "cs", "cze": "cs", "swe": "sv",
    "nor": "no", "nob": "nb", "dan": "da", "fin": "fi", "tur": "tr", "ell": "el", "gre": "el", "hun": "hu",
    "ron": "ro", "rum": "ro", "jpn": "ja", "kor": "ko", "zho": "zh", "chi": "zh", "ara": "ar", "heb": "he",
    "hin": "hi", "ind": "id", "vie": "vi", "tha": "th", "cat": "ca", "fas": "fa", "per": "fa",
}  # fmt: skip
# Cues spanning at least this share of a file's duration (first cue to last) transcribe it: `--asr auto` then
# skips Whisper. Dialogue subtitles leave music and action uncovered, but span the film.
COVERAGE = 0.6


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class SubtitleTrack:
    source: str  # "sidecar NAME.srt" or "stream N (codec)"
    language: str | None  # ISO 639-1 where known ("en"), else the tag as found; None when untagged
    cues: tuple[Cue, ...]


def normalise_language(tag: str | None) -> str | None:
    """'eng' -> 'en', 'pt_BR' -> 'pt-br', 'und' or '' -> None."""
    if not tag:
        return None
    tag = tag.strip().replace("_", "-").lower()
    if tag in ("", "und", "unk", "mul", "zxx"):
        return None
    base, _, region = tag.partition("-")
    base = ISO_639_2.get(base, base)
    return f"{base}-{region}" if region else base


def find_sidecars(media_path: Path) -> list[tuple[Path, str | None]]:
    """Subtitle files next to `media_path` named after it, each with the language its name gives (or None)."""
    stem = media_path.stem
    try:
        siblings = sorted(p for p in media_path.parent.iterdir() if p.name.startswith(stem) and p != media_path)
    except OSError:
        return []
    found: list[tuple[Path, str | None]] = []
    for path in siblings:
        if path.suffix.lower() not in SIDECAR_SUFFIXES or not path.is_file():
            continue
        middle = path.name[len(stem) : -len(path.suffix)]
        if middle == "":
            found.append((path, None))
        elif middle.startswith(".") and _LANG_TAG.match(middle[1:]):
            found.append((path, normalise_language(middle[1:])))
    return found


def read_sidecar(path: Path, language: str | None = None) -> SubtitleTrack:
    """The cues of one subtitle file; MediaError when pysubs2 cannot read it."""
    import pysubs2

    try:
        subs = pysubs2.load(str(path), encoding=_encoding(path))
    except (pysubs2.exceptions.Pysubs2Error, OSError, ValueError, UnicodeDecodeError) as e:
        raise MediaError(f"cannot read subtitles {path.name}: {str(e).splitlines()[0] if str(e) else e!r}") from e
    cues = _cues((e.start / 1000.0, e.end / 1000.0, e.plaintext) for e in subs if not e.is_comment)
    return SubtitleTrack(f"sidecar {path.name}", language, cues)


def _encoding(path: Path) -> str:
    """utf-8 (with or without BOM) when the file decodes as such, else latin-1 (older .srt files)."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"


def read_embedded(media_path: Path) -> list[SubtitleTrack]:
    """Every text subtitle stream of a container, cues at their presentation times."""
    import av

    tracks: list[SubtitleTrack] = []
    try:
        with av.open(str(media_path), metadata_errors="ignore") as container:
            for stream in container.streams.subtitles:
                codec = stream.codec_context.name if stream.codec_context else ""
                if codec not in TEXT_CODECS:
                    log.debug("%s: subtitle stream %d is %s (no text), skipped", media_path, stream.index, codec)
                    continue
                language = normalise_language(dict(stream.metadata).get("language"))
                cues = _cues(_stream_cues(container, stream))
                tracks.append(SubtitleTrack(f"stream {stream.index} ({codec})", language, cues))
                container.seek(0)
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"cannot read subtitle streams: {decoder_reason(e)}") from e
    return tracks


def _stream_cues(container: Any, stream: Any) -> Iterable[tuple[float, float, str]]:
    import av
    import pysubs2

    for packet in container.demux(stream):
        if packet.pts is None or packet.time_base is None:
            continue
        start = float(packet.pts * packet.time_base)
        end = start + float((packet.duration or 0) * packet.time_base)
        try:
            decoded = packet.decode()
        except av.FFmpegError:
            continue  # one broken cue costs that cue
        for sub in decoded:
            dialogue = getattr(sub, "dialogue", None)
            if dialogue:
                yield start, end, pysubs2.SSAEvent(text=bytes(dialogue).decode("utf-8", "replace")).plaintext


def _cues(raw: Iterable[tuple[float, float, str]]) -> tuple[Cue, ...]:
    """Cues with text, in time order, whitespace folded; a cue without an end lasts until the next one starts."""
    items = sorted((max(0.0, s), e, " ".join(t.split())) for s, e, t in raw if t.strip())
    out = []
    for n, (start, end, text) in enumerate(items):
        if end <= start:
            end = items[n + 1][0] if n + 1 < len(items) and items[n + 1][0] > start else start + 2.0
        out.append(Cue(round(start, 3), round(end, 3), text))
    return tuple(out)


def read_subtitles(media_path: Path) -> list[SubtitleTrack]:
    """Sidecars, then embedded streams; a track that cannot be read is skipped with a warning (the media file
    itself is still indexed)."""
    tracks: list[SubtitleTrack] = []
    for path, language in find_sidecars(media_path):
        try:
            tracks.append(read_sidecar(path, language))
        except MediaError as e:
            log.warning("%s", e.message)
    try:
        tracks += read_embedded(media_path)
    except MediaError as e:
        log.warning("%s: %s", media_path.name, e.message)
    return [t for t in tracks if t.cues]


def covers(tracks: Sequence[SubtitleTrack], duration: float | None, language: str | None) -> bool:
    """Whether some track in the spoken `language` (None: not known) spans the file (`--asr auto`).

    A track whose language is not tagged counts as the spoken one; with the spoken language unknown, a tagged
    track counts when all tagged tracks share its language (a file with English and French tracks could be
    dubbed either way, so Whisper decides).
    """
    if not duration or duration <= 0:
        return False
    spoken = (normalise_language(language) or "").split("-")[0] or None
    tagged = {t.language.split("-")[0] for t in tracks if t.language}
    for track in tracks:
        lang = track.language.split("-")[0] if track.language else None
        if lang is not None and (lang != spoken if spoken else len(tagged) > 1):
            continue
        span = track.cues[-1].end - track.cues[0].start
        if span >= COVERAGE * duration:
            return True
    return False
