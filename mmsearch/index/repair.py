"""`mmsearch check --repair`: make catalog, vectors and manifest agree again, in one commit under the write lock
(on a shared catalog: under its planning lock, so that no worker plans meanwhile).

Repair never invents data. It salvages the readable rows of a damaged catalog, takes the vectors the store can
vouch for (FAISS: the live generation if its checksum holds, else the previous one), and then drops what still
disagrees: vectors without a segment, segments without a file, and files whose segments lack vectors, so that the
next `mmsearch index` of their folder embeds them again.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from ..paths import BM25_PREFIX, CATALOG_FILE
from ..stores.protocol import VectorStore
from ..stores.registry import DEFAULT_BACKEND, STORES, backend_of
from .check import ALWAYS_SEGMENTED, CheckReport, check_index
from .facade import Index
from .location import IndexLocation
from .salvage import Unsalvageable, salvage_catalog, set_aside

# Problems repair handles before the catalog can even be opened.
CATALOG_PROBLEMS = ("catalog", "stillborn")


class _Reset(Exception):
    """The catalog could not be salvaged and was reset (under the write lock); carries the report."""

    def __init__(self, report: CheckReport) -> None:
        super().__init__(report.repaired[0])
        self.report = report


def repair_index(location: IndexLocation | Path) -> CheckReport:
    """Fix what `check_index` finds; returns the check after repair (with what was repaired)."""
    location = IndexLocation.of(location)
    before = check_index(location)
    if not any(p.fixable for p in before.problems):
        return before
    codes = {p.code for p in before.problems}
    done: list[str] = []
    salvaged: list[int | None] = [None]  # the first file id a salvaged catalog may have lost

    def salvage() -> None:  # under the write lock, before the catalog is opened
        if "catalog" in codes and not location.shared:
            try:
                result = salvage_catalog(location.directory / CATALOG_FILE)
            except Unsalvageable as e:
                raise _Reset(_reset(location, before, e.message)) from e
            salvaged[0] = result.lost_from_file
            done.append(f"salvaged the damaged catalog ({_counts(result.copied)}); kept it as {result.kept_as.name}")

    try:
        index = Index.write(location, "", untrained=False, device="cpu", prepare=salvage)
    except _Reset as reset:
        return reset.report
    with index, index.exclusive():
        raw = index.manifest_values()
        if "model" not in raw and not index.files():
            index.close(commit=False)  # removes what never held an index
            report = CheckReport(index=before.index)
            report.repaired = ["removed the catalog of a first run that stopped before committing"]
            report.notes = ["run `mmsearch index PATH` to build the index"]
            return report
        if raw.get("backend", DEFAULT_BACKEND) not in STORES:
            owner = next((b for b in STORES.values() if b.holds_files(location.directory)), None)
            if owner is not None:  # an unknown name beside a known store's files: those are the store
                raw["backend"] = owner.name
                index.record({"backend": owner.name})
                done.append(
                    f"the manifest named an unknown vector backend; set it to {owner.name}, whose files the index has"
                )
        backend = backend_of(raw)
        recovered = backend.recover(raw, location.directory)
        if recovered.note:
            done.append(recovered.note)
        index.adopt_vectors(recovered.store, backend.newest_generation(raw, location.directory))
        index.record({"dim": str(recovered.store.dim)})
        done += _drop_disagreements(index, recovered.store, salvaged[0])
        index.commit()
        backend.keep_only(location.directory, index.generation)
    return _after(location, before, done)


def _reset(location: IndexLocation, before: CheckReport, why: str) -> CheckReport:
    """No manifest to go by: set the catalog aside and drop the vectors, which nothing can vouch for any more."""
    index_dir = location.directory
    kept = set_aside(index_dir / CATALOG_FILE)
    for backend in STORES.values():
        backend.reset(index_dir)
    for path in index_dir.glob(f"{BM25_PREFIX}*"):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    report = CheckReport(index=before.index)
    report.repaired = [f"{why}: reset the index (the damaged catalog is kept as {kept.name})"]
    report.notes = ["run `mmsearch index PATH --model MODEL` with the index's model to build it again"]
    return report


def _after(location: IndexLocation, before: CheckReport, done: list[str]) -> CheckReport:
    after = check_index(location)
    after.repaired = [p.message for p in before.problems if p.fixable] + done
    return after


def _counts(copied: dict[str, int]) -> str:
    return ", ".join(f"{n} {table} row(s)" for table, n in copied.items())


def _drop_disagreements(index: Index, store: VectorStore, lost_from: int | None) -> list[str]:
    """One pass: duplicates, homeless segments, then orphan vectors (theirs included), then incomplete files."""
    catalog = index.catalog
    done: list[str] = []
    # remove_ids drops every vector with a duplicated id; their files are then re-indexed like any other.
    store.remove([i for i, n in Counter(store.ids().tolist()).items() if n > 1])
    owners = catalog.segment_owners()
    files = {r.id: r for r in catalog.files()}
    homeless = [s for s, f in owners.items() if f not in files]
    catalog.remove_segments(homeless)
    catalog.remove_shots_of(catalog.homeless_shot_files())
    owners = {s: f for s, f in owners.items() if f in files}
    have = set(store.ids().tolist())
    store.remove(sorted(have - owners.keys()))
    incomplete = {f for s, f in owners.items() if s not in have}
    segmented = set(owners.values())
    incomplete |= {r.id for r in files.values() if r.kind in ALWAYS_SEGMENTED and r.id not in segmented}
    if lost_from is not None:
        incomplete |= {i for i in files if i >= lost_from}
    for file_id in sorted(incomplete):
        index.remove_file(files[file_id])
        done.append(f"dropped {files[file_id].path} from the index: the next `mmsearch index` re-embeds it")
    return done
