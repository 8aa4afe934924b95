"""What the indexer saw in one file, for `mmsearch show PATH`: shots, transcript, text on screen, vectors per space."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BadInput
from ..paths import display_path, path_key
from ..types import CLIP_KINDS, SegmentKind
from .catalog import Catalog, SegmentRecord
from .facade import Index
from .location import IndexLocation


def _span(start: float | None, end: float | None) -> dict[str, float | None]:
    return {"start": start, "end": end}


def _faces(catalog: Catalog, file_id: int) -> list[dict[str, object]]:
    """The file's face tracks with their person (id and name; None until the run that found them commits)."""
    names = {p.id: p.name for p in catalog.people()}
    return [
        {**_span(t.start, t.end), "person_id": t.person_id, "person": names.get(t.person_id or 0), "size": t.size}
        for t in catalog.face_tracks(file_id=file_id)
    ]


def _worded(s: SegmentRecord) -> dict[str, object]:
    """A segment with words: its span and text, and the channel and language it was heard in where known."""
    row: dict[str, object] = {**_span(s.start, s.end), "text": s.text}
    if s.channel is not None:
        row["channel"] = s.channel
    if s.language is not None:
        row["language"] = s.language
    return row


def describe_file(location: IndexLocation | Path, path: Path) -> dict[str, object]:
    """One indexed file as data: its record, shots, speech and ocr segments with times, vectors of each space."""
    location = IndexLocation.of(location)
    with Index.read(location, device="cpu") as index:
        record = index.file_by_key(path_key(os.path.abspath(path)))
        if record is None:
            raise BadInput(
                f"{display_path(path)} is not in the index {location.label}",
                hint="`mmsearch index PATH` adds it; paths are matched by their absolute form",
            )
        segments = index.segments_of(record.id)
        counts = {k.value: sum(s.kind is k for s in segments) for k in SegmentKind}
        return {
            "path": record.path,
            "kind": record.kind.value,
            "duration": record.duration,
            "has_audio": record.has_audio,
            "asr": record.asr,
            "language": record.language,
            "segments": {k: n for k, n in counts.items() if n},
            "vectors": {"clip": sum(s.kind in CLIP_KINDS for s in segments), **index.space_counts(record.id)},
            "shots": [_span(a, b) for a, b in index.shots_of(record.id)],
            "speech": [_worded(s) for s in segments if s.kind is SegmentKind.SPEECH],
            "subtitles": [_worded(s) for s in segments if s.kind is SegmentKind.SUBTITLE],
            "ocr": [_worded(s) for s in segments if s.kind is SegmentKind.OCR],
            "faces": _faces(index.catalog, record.id),
        }
