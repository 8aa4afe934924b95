"""Changes to an index's people from the edges (`mmsearch people`, the HTTP API): read the list, or apply one
change under the index's write lock and commit it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..errors import CorruptIndex
from .facade import Index
from .location import IndexLocation
from .people import PeopleCatalog, Person

T = TypeVar("T")


def list_people(location: IndexLocation | Path) -> list[Person]:
    """The people of an index's last committed state."""
    with Index.read(location, device="cpu") as index:
        return index.catalog.people()


def change_people(location: IndexLocation | Path, change: Callable[[PeopleCatalog], T]) -> T:
    """Apply one change (name, merge, forget) under the index's write lock and commit it; then fold SQLite's
    write-ahead log into the database file, so that what `forget` deleted is gone from the disk too."""
    location = IndexLocation.of(location)
    with Index.read(location) as reader:  # IndexNotFound (and a damaged manifest) before anything is locked
        manifest = reader.manifest
    index = Index.write(location, manifest.model, manifest.untrained, device="cpu")
    with index, index.exclusive():
        index.open_vectors(_no_store)
        result = index.edit_people(change)
        index.commit()
    after = location.open_catalog(readonly=False)  # the writer's connection is closed: nothing holds the log
    try:
        after.scrub()
    finally:
        after.close()
    return result


def _no_store() -> int:
    raise CorruptIndex("the index has no vectors yet", hint="run `mmsearch index PATH` first")
