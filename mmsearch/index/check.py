"""`mmsearch check`: verify that catalog, vectors and manifest agree, and repair what can be repaired.

Every segment id must have exactly one vector in the live generation and every vector a segment; the manifest
must name the model, dimension and a live generation file that exists and can be read. Files that are indexed
but gone from disk are *stale*, not corrupt: the next `index` of their folder (or `mmsearch remove`) drops them.

Repair (repair.py) never invents data: it drops vectors without a segment, and drops files whose segments lack
vectors (catalog rows included) so that the next `mmsearch index` of their folder embeds them again.

A writer may commit while check runs: check reads catalog and manifest in one snapshot, and when the
generation that snapshot named is retired before check could read its file, it checks again (a writer's
work in progress is not a fault).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorruptIndex, IndexNotFound, SchemaTooNew
from ..paths import display_path
from ..stores.protocol import VectorStore
from ..stores.registry import backend_of
from ..types import MediaKind
from . import catalog as catalog_module
from .catalog import FileRecord, fs_path
from .catalog_pg import PG_SCHEMA_VERSION
from .location import IndexLocation
from .lock import writer_active
from .manifest import READER_ATTEMPTS, Manifest

# Problem lines name at most this many example ids or paths; the count says how many there are.
EXAMPLES = 3
REQUIRED_MANIFEST_KEYS = ("model", "dim", "vectors_generation")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    fixable: bool
    # The index cannot serve queries until this is repaired (missing vectors, incomplete manifest).
    fatal: bool = False

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "fixable": self.fixable, "fatal": self.fatal}


@dataclass
class CheckReport:
    index: str
    schema_version: int = 0
    generation: int | None = None
    files: int = 0
    segments: int = 0  # every segment, of every kind (as `info` counts them)
    vectors: int = 0  # CLIP vectors in the vector store
    segment_kinds: dict[str, int] = field(default_factory=dict)
    space_vectors: dict[str, int] = field(default_factory=dict)  # "clip" and each extra space (text, audio)
    problems: list[Problem] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if any(p.fatal for p in self.problems):
            return 2
        return 1 if self.problems else 0

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "ok": not self.problems,
            "schema_version": self.schema_version,
            "generation": self.generation,
            "files": self.files,
            "segments": self.segments,
            "segment_kinds": self.segment_kinds,
            "vectors": self.vectors,
            "space_vectors": self.space_vectors,
            "problems": [p.to_json() for p in self.problems],
            "stale": self.stale,
            "repaired": self.repaired,
            "notes": self.notes,
        }


def _examples(items: list[int] | list[str]) -> str:
    shown = ", ".join(str(i) for i in items[:EXAMPLES])
    return shown + (", …" if len(items) > EXAMPLES else "")


# Kinds whose every indexed file has at least one segment: such a file without segments lost them.
ALWAYS_SEGMENTED = (MediaKind.IMAGE, MediaKind.VIDEO)


def check_index(location: IndexLocation | Path) -> CheckReport:
    """Read-only check of the last committed state. Raises IndexNotFound or SchemaTooNew."""
    location = IndexLocation.of(location)
    for _ in range(READER_ATTEMPTS):
        report = _check_once(location)
        if not report.problems or _live_generation(location) == report.generation:
            return report
        # A writer committed meanwhile: what looked missing or stray may be its work. Check its new state.
    return report


def _live_generation(location: IndexLocation) -> int | None:
    try:
        catalog = location.open_catalog(readonly=True)
    except CorruptIndex:
        return None
    try:
        return int(catalog.manifest().get("vectors_generation", -1))
    except (CorruptIndex, ValueError):
        return None
    finally:
        catalog.close()


@dataclass(frozen=True)
class _CatalogView:
    raw: dict[str, str]
    files: list[FileRecord]
    owners: dict[int, int]
    homeless_shots: list[int]
    kinds: dict[str, int]
    spaces: dict[str, int]


def _read_catalog(location: IndexLocation, report: CheckReport) -> _CatalogView | None:
    """Manifest, files and segment owners from one snapshot; None (and a fatal problem) if the catalog is damaged."""
    try:
        catalog = location.open_catalog(readonly=True)
    except (SchemaTooNew, IndexNotFound):
        raise
    except CorruptIndex as e:
        stillborn = "stopped before committing" in e.message
        code = "stillborn" if stillborn else "catalog"
        report.problems.append(Problem(code, e.message, fixable=True, fatal=True))
        return None
    try:
        with catalog.snapshot():
            report.schema_version = catalog.schema_version()
            damage = catalog.damage()
            if damage is None:
                view = _CatalogView(
                    catalog.manifest(),
                    catalog.files(),
                    catalog.segment_owners(),
                    catalog.homeless_shot_files(),
                    catalog.counts(),
                    catalog.space_counts(),
                )
    except CorruptIndex as e:
        damage = e.message
    finally:
        catalog.close()
    if damage is not None:
        report.problems.append(Problem("catalog", f"catalog is damaged: {damage}", fixable=True, fatal=True))
        return None
    return view


def _check_once(location: IndexLocation) -> CheckReport:
    report = CheckReport(index=location.label)
    view = _read_catalog(location, report)
    if view is None:
        return report
    raw, files, owners = view.raw, view.files, view.owners
    report.files, report.segments = len(files), sum(view.kinds.values())
    report.segment_kinds = {kind: n for kind, n in view.kinds.items() if n}
    if view.homeless_shots:
        report.problems.append(
            Problem("orphan-shots", f"shots of {len(view.homeless_shots)} file id(s) without a file row", True)
        )
    report.stale = [r.path for r in files if not os.path.lexists(fs_path(r))]
    # Looked up now: tests add a migration to simulate an upgrade.
    latest = PG_SCHEMA_VERSION if location.shared else catalog_module.SCHEMA_VERSION
    if report.schema_version < latest:
        report.problems.append(
            Problem(
                "old-schema",
                f"catalog schema version {report.schema_version} is older than {latest}; "
                "the next `mmsearch index` or `check --repair` upgrades it",
                fixable=True,
            )
        )
    missing = [k for k in REQUIRED_MANIFEST_KEYS if k not in raw]
    if missing:
        stillborn = not files and "model" not in raw
        report.problems.append(
            Problem(
                "stillborn" if stillborn else "manifest",
                f"manifest lacks {', '.join(missing)} (never committed?)",
                fixable=stillborn,
                fatal=True,
            )
        )
        return report
    try:
        manifest = Manifest.from_catalog_values(raw, location.label_path)
    except CorruptIndex as e:
        report.problems.append(Problem("manifest", e.message, fixable=True, fatal=True))
        return report
    report.generation = manifest.generation
    store = _load_live(location, manifest, report)
    if store is not None:
        try:
            _compare(store, files, owners, report)
        finally:
            store.close()
    report.space_vectors = {"clip": report.vectors, **view.spaces}
    if not location.shared:  # a shared index has no local files to stray
        _check_strays(location, manifest, report)
    return report


def _check_strays(location: IndexLocation, manifest: Manifest, report: CheckReport) -> None:
    index_dir, generation = location.directory, manifest.generation
    if writer_active(index_dir):
        report.notes.append("a writer is indexing now: this is its last commit; temporary files not checked")
        return
    strays = backend_of(manifest.raw).strays(index_dir, generation)
    if strays and (writer_active(index_dir) or _live_generation(location) != generation):
        report.notes.append("a writer committed during the check; temporary files not checked")
        return
    for stray in strays:
        report.problems.append(Problem("stray-file", f"stray file {display_path(stray)}", fixable=True))


def _load_live(location: IndexLocation, manifest: Manifest, report: CheckReport) -> VectorStore | None:
    store, faults = backend_of(manifest.raw).inspect(manifest.raw, location.directory)
    for fault in faults:
        message = fault.message
        if fault.code == "vectors":
            message += f" of its {report.files} file(s)"
        report.problems.append(Problem(fault.code, message, fault.fixable, fault.fatal))
    return store


def _compare(store: VectorStore, files: list[FileRecord], owners: dict[int, int], report: CheckReport) -> None:
    ids = store.ids().tolist()
    report.vectors = len(ids)
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        report.problems.append(
            Problem("duplicate-vectors", f"{len(duplicates)} id(s) with several vectors: {_examples(duplicates)}", True)
        )
    have = set(ids)
    orphans = sorted(have - owners.keys())
    if orphans:
        report.problems.append(
            Problem("orphan-vectors", f"{len(orphans)} vector(s) without a segment: ids {_examples(orphans)}", True)
        )
    by_id = {r.id: r for r in files}
    homeless = sorted(s for s, f in owners.items() if f not in by_id)
    if homeless:
        report.problems.append(
            Problem("orphan-segments", f"{len(homeless)} segment(s) without a file: ids {_examples(homeless)}", True)
        )
    lacking: Counter[int] = Counter(f for s, f in owners.items() if s not in have and f in by_id)
    for file_id, n in sorted(lacking.items()):
        report.problems.append(
            Problem("missing-vectors", f"{by_id[file_id].path}: {n} segment(s) without a vector", fixable=True)
        )
    segmented = set(owners.values())
    for rec in files:
        if rec.kind in ALWAYS_SEGMENTED and rec.id not in segmented:
            report.problems.append(
                Problem("missing-segments", f"{rec.path}: indexed {rec.kind.value} without segments", fixable=True)
            )
