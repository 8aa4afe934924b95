"""`mmsearch remove`: drop files, or everything under a folder, from an index (their vectors included).

Paths need not exist any more: they are matched against the catalog by the same absolute form `index` records.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorruptIndex
from ..paths import display_path, is_under, path_key
from ..types import FileFailure
from .facade import Index
from .location import IndexLocation


@dataclass
class RemoveSummary:
    index: str
    removed_files: int = 0
    removed_segments: int = 0
    files: int = 0
    segments: int = 0
    failed: list[FileFailure] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "removed_files": self.removed_files,
            "removed_segments": self.removed_segments,
            "files": self.files,
            "segments": self.segments,
            "failed": [f.to_json() for f in self.failed],
        }


def _no_new_index() -> int:
    raise CorruptIndex("the index has no vectors to remove from")


def remove_paths(location: IndexLocation | Path, paths: Sequence[Path]) -> RemoveSummary:
    """Remove every indexed file equal to or under one of `paths`; a path matching nothing is a failure."""
    location = IndexLocation.of(location)
    with Index.read(location) as reader:  # IndexNotFound (and a damaged manifest) before anything is locked
        manifest = reader.manifest
    summary = RemoveSummary(index=location.label)
    index = Index.write(location, manifest.model, manifest.untrained, device="cpu")
    with index, index.exclusive():  # a shared catalog: not while a worker plans
        index.open_vectors(_no_new_index)
        records = index.files()
        gone: set[int] = set()
        for path in paths:
            key = path_key(os.path.abspath(path))
            matches = [r for r in records if r.id not in gone and is_under(r.raw_path, [key])]
            if not matches and not any(is_under(r.raw_path, [key]) for r in records):
                summary.failed.append(FileFailure(display_path(path), "not in the index"))
            for record in matches:
                summary.removed_segments += index.remove_file(record)
                summary.removed_files += 1
                gone.add(record.id)
        index.commit()
        summary.files = index.file_count()
        summary.segments = sum(index.segment_counts().values())
    return summary
