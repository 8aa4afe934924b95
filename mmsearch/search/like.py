"""Query by example: an indexed file (or a time range of it) as the query: `LikeSpec`, from `--like PATH[@START-END]`
(`resolve_like`) or an HTTP file id.

Nothing is decoded again: the example's stored vectors are read back from the index (IndexIDMap2 keeps them).
Its frames (or still image) give the visual query, its transcript segments the speech query and its words the
keyword query; a video without speech queries speech with its frames (image→audio), a recording without frames
queries the visual channel with its speech (text→video). Results overlapping the example itself in the same
file are left out (the whole file when no range is given); other copies of the same content are not.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BadInput, UsageError
from ..index.catalog import Catalog, FileRecord, SegmentRecord
from ..models.clip import normalize
from ..paths import display_path, path_key
from ..stores.protocol import VectorStore
from ..types import SegmentKind
from .channels import Evidence, Exclusion

_RANGE = re.compile(r"^(\d+(?:\.\d*)?)-(\d+(?:\.\d*)?)$")


@dataclass(frozen=True)
class LikeSpec:
    """An indexed file (by catalog id), or the time range [start, end) of it in seconds, used as the query.

    Resolved once where the query comes in (`resolve_like` for the CLI's `PATH[@START-END]`, the file id for
    HTTP); `name` is only what the query's label shows."""

    file_id: int
    start: float | None = None
    end: float | None = None
    name: str = field(default="", compare=False)

    def validate(self) -> None:
        if (self.start is None) != (self.end is None):
            raise UsageError("give both start and end, or neither")
        if self.start is not None and self.end is not None and not self.end > self.start:
            raise UsageError(f"--like range {self.span[1:]!r}: END must be greater than START")

    @property
    def span(self) -> str:
        return f"@{self.start:g}-{self.end:g}" if self.start is not None and self.end is not None else ""

    @property
    def label(self) -> str:
        return f"like:{self.name or f'file {self.file_id}'}{self.span}"


def resolve_like(catalog: Catalog, spec: str) -> LikeSpec:
    """`PATH` or `PATH@START-END` (seconds) of an indexed file; the file need not exist on disk any more.

    The whole text is tried as an indexed path first, so a file whose name holds an '@' is never split there;
    otherwise it is split at its last '@'. UsageError for a malformed range, BadInput for a file not indexed."""
    if not spec.strip():
        raise UsageError("--like needs a path")
    record = _indexed(catalog, spec)
    if record is not None:
        return LikeSpec(record.id, name=display_path(Path(spec)))
    head, sep, tail = spec.rpartition("@")
    match = _RANGE.match(tail.strip()) if sep else None
    if match is None:
        if sep and not os.path.exists(spec):  # not an indexed path, nor PATH@START-END (a name too long: False)
            raise UsageError(f"--like range {tail!r} is not START-END in seconds", hint="e.g. --like talk.mp4@12.5-20")
        raise _not_indexed(spec)
    start, end = float(match.group(1)), float(match.group(2))
    if not end > start:
        raise UsageError(f"--like range {tail!r}: END must be greater than START")
    record = _indexed(catalog, head)
    if record is None:
        raise _not_indexed(head)
    return LikeSpec(record.id, start, end, display_path(Path(head)))


def _indexed(catalog: Catalog, path: str) -> FileRecord | None:
    return catalog.file_by_key(path_key(os.path.abspath(path)))


def _not_indexed(path: str) -> BadInput:
    return BadInput(
        f"--like {display_path(path)} is not in the index",
        hint="index it first with `mmsearch index PATH`, or query with --image / a text",
    )


def example_evidence(catalog: Catalog, store: VectorStore, spec: LikeSpec) -> Evidence:
    """Query vectors and words of the example, read from the index; BadInput when it has none there."""
    segments = [s for s in catalog.segments_of(spec.file_id) if _inside(s, spec)]
    if not segments:
        where = f" between {spec.start:g} s and {spec.end:g} s" if spec.start is not None else ""
        raise BadInput(f"--like {spec.name or f'file {spec.file_id}'} has no indexed frames or speech{where}")
    # Only CLIP kinds have vectors in the store: ocr and audio segments live in their own spaces.
    seen = [s for s in segments if s.kind in (SegmentKind.FRAME, SegmentKind.IMAGE)]
    said = [s for s in segments if s.kind is SegmentKind.SPEECH]
    visual = _mean_vector(store, seen)
    speech = _mean_vector(store, said)
    words = " ".join(s.text for s in said if s.text) or None
    return Evidence(
        visual=visual if visual is not None else speech,
        speech=speech if speech is not None else visual,
        text=words,
        exclude=Exclusion(spec.file_id, spec.start, spec.end),
    )


def _inside(segment: SegmentRecord, spec: LikeSpec) -> bool:
    if spec.start is None or spec.end is None or segment.start is None:
        return True
    end = segment.end if segment.end is not None else segment.start
    return segment.start < spec.end and end > spec.start


def _mean_vector(store: VectorStore, segments: list[SegmentRecord]) -> np.ndarray | None:
    """The normalised mean of the segments' stored vectors: the centroid direction in CLIP space."""
    if not segments:
        return None
    vectors = store.reconstruct([s.id for s in segments])
    return normalize(vectors.mean(axis=0, keepdims=True))[0]
