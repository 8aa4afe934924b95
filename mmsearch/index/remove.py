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
from .catalog_pg import open_catalog, redact
from .manifest import Manifest, require_index
from .writer import IndexWriter


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


def remove_paths(index_dir: Path, paths: Sequence[Path], catalog_url: str | None = None) -> RemoveSummary:
    """Remove every indexed file equal to or under one of `paths`; a path matching nothing is a failure."""
    catalog = open_catalog(catalog_url or require_index(index_dir), readonly=True)
    try:
        manifest = Manifest.from_catalog(catalog, index_dir)
    finally:
        catalog.close()
    summary = RemoveSummary(index=redact(catalog_url) if catalog_url else display_path(index_dir))
    writer = IndexWriter(index_dir, manifest.model, manifest.untrained, device="cpu", catalog_url=catalog_url)
    writer.open()
    with writer, writer.work.exclusive():  # a shared catalog: not while a worker plans
        writer.ensure_store(_no_new_index)
        records = writer._cat().files()
        gone: set[int] = set()
        for path in paths:
            key = path_key(os.path.abspath(path))
            matches = [r for r in records if r.id not in gone and is_under(r.raw_path, [key])]
            if not matches and not any(is_under(r.raw_path, [key]) for r in records):
                summary.failed.append(FileFailure(display_path(path), "not in the index"))
            for record in matches:
                summary.removed_segments += writer.remove_file(record)
                summary.removed_files += 1
                gone.add(record.id)
        writer.commit()
        summary.files = writer._cat().file_count()
        summary.segments = sum(writer._cat().counts().values())
    return summary
