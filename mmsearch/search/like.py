"""Query by example: `--like PATH[@START-END]` uses an indexed file (or a time range of it) as the query.

Nothing is decoded again: the example's stored vectors are read back from the index (IndexIDMap2 keeps them).
Its frames (or still image) give the visual query, its transcript segments the speech query and its words the
keyword query; a video without speech queries speech with its frames (image→audio), a recording without frames
queries the visual channel with its speech (text→video). Results overlapping the example itself in the same
file are left out (the whole file when no range is given); other copies of the same content are not.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput, UsageError
from ..index.catalog import Catalog, SegmentRecord
from ..models.clip import normalize
from ..paths import display_path, path_key
from ..stores.protocol import VectorStore
from ..types import SegmentKind
from .channels import Evidence, Exclusion

_RANGE = re.compile(r"^(\d+(?:\.\d*)?)-(\d+(?:\.\d*)?)$")


@dataclass(frozen=True)
class LikeSpec:
    path: Path
    start: float | None = None
    end: float | None = None

    @property
    def label(self) -> str:
        span = f"@{self.start:g}-{self.end:g}" if self.start is not None and self.end is not None else ""
        return f"like:{display_path(self.path)}{span}"


def parse_like(spec: str) -> LikeSpec:
    """`PATH` or `PATH@START-END` (seconds); a path that exists as given is never split at its own '@'."""
    if not spec.strip():
        raise UsageError("--like needs a path")
    head, sep, tail = spec.rpartition("@")
    if not sep or Path(spec).exists():
        return LikeSpec(Path(spec))
    match = _RANGE.match(tail.strip())
    if not match:
        raise UsageError(f"--like range {tail!r} is not START-END in seconds", hint="e.g. --like talk.mp4@12.5-20")
    start, end = float(match.group(1)), float(match.group(2))
    if not end > start:
        raise UsageError(f"--like range {tail!r}: END must be greater than START")
    return LikeSpec(Path(head), start, end)


def example_evidence(catalog: Catalog, store: VectorStore, spec: LikeSpec) -> Evidence:
    """Query vectors and words of the example, read from the index; BadInput when it is not indexed."""
    record = catalog.file_by_key(path_key(Path(os.path.abspath(spec.path))))
    if record is None:
        raise BadInput(
            f"--like {display_path(spec.path)} is not in the index",
            hint="index it first with `mmsearch index PATH`, or query with --image / a text",
        )
    segments = [s for s in catalog.segments_of(record.id) if _inside(s, spec)]
    if not segments:
        where = f" between {spec.start:g} s and {spec.end:g} s" if spec.start is not None else ""
        raise BadInput(f"--like {display_path(spec.path)} has no indexed frames or speech{where}")
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
        exclude=Exclusion(record.id, spec.start, spec.end),
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
