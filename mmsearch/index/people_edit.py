"""Changes to an index's people from the edges (`mmsearch people`, the HTTP API): read the list, or apply one
change under the index's write lock and commit it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import CorruptIndex
from .catalog import Catalog
from .manifest import Manifest, require_index
from .people import PeopleCatalog, Person
from .writer import IndexWriter

T = TypeVar("T")


def list_people(index_dir: Path) -> list[Person]:
    """The people of an index's last committed state."""
    catalog = Catalog.open(require_index(index_dir), readonly=True)
    try:
        return catalog.people()
    finally:
        catalog.close()


def change_people(index_dir: Path, change: Callable[[PeopleCatalog], T]) -> T:
    """Apply one change (name, merge, forget) under the index's write lock, and commit it."""
    reader = Catalog.open(require_index(index_dir), readonly=True)
    try:
        manifest = Manifest.from_catalog(reader, index_dir)
    finally:
        reader.close()
    writer = IndexWriter(index_dir, manifest.model, manifest.untrained, device="cpu")
    writer.open()
    with writer:
        writer.ensure_store(_no_store)
        result = change(writer._cat())
        writer.commit()
    after = Catalog.open(require_index(index_dir))  # the writer's is closed: nothing holds the log now
    try:
        after.scrub()
    finally:
        after.close()
    return result


def _no_store() -> int:
    raise CorruptIndex("the index has no vectors yet", hint="run `mmsearch index PATH` first")
