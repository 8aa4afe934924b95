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

import fcntl
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorruptIndex, SchemaTooNew
from ..paths import LOCK_FILE, display_path
from ..stores.faiss_index import plan_from_manifest
from ..stores.faiss_store import FaissStore, file_checksum, generation_file, stale_generation_files
from ..stores.protocol import BACKEND_FAISS, VectorStore, open_store
from ..types import MediaKind
from . import catalog as catalog_module
from .catalog import Catalog, FileRecord, fs_path
from .manifest import READER_ATTEMPTS, Manifest, require_index

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
    segments: int = 0
    vectors: int = 0
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
            "vectors": self.vectors,
            "problems": [p.to_json() for p in self.problems],
            "stale": self.stale,
            "repaired": self.repaired,
            "notes": self.notes,
        }


def _examples(items: list[int] | list[str]) -> str:
    shown = ", ".join(str(i) for i in items[:EXAMPLES])
    return shown + (", …" if len(items) > EXAMPLES else "")


def writer_active(index_dir: Path) -> bool:
    """Whether another process holds the write lock right now (its temporary files are then not stray)."""
    lock = index_dir / LOCK_FILE
    if not lock.exists():
        return False
    try:
        fh = open(lock, "rb")  # noqa: SIM115 - closed below; read access is enough for flock
    except OSError:
        return False  # cannot tell (unreadable lock file): check everything
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


# Kinds whose every indexed file has at least one segment: such a file without segments lost them.
ALWAYS_SEGMENTED = (MediaKind.IMAGE, MediaKind.VIDEO)


def check_index(index_dir: Path) -> CheckReport:
    """Read-only check of the last committed state. Raises IndexNotFound or SchemaTooNew."""
    for _ in range(READER_ATTEMPTS):
        report = _check_once(index_dir)
        if not report.problems or _live_generation(index_dir) == report.generation:
            return report
        # A writer committed meanwhile: what looked missing or stray may be its work. Check its new state.
    return report


def _live_generation(index_dir: Path) -> int | None:
    try:
        catalog = Catalog.open(require_index(index_dir), readonly=True)
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


def _read_catalog(index_dir: Path, report: CheckReport) -> _CatalogView | None:
    """Manifest, files and segment owners from one snapshot; None (and a fatal problem) if the catalog is damaged."""
    try:
        catalog = Catalog.open(require_index(index_dir), readonly=True)
    except SchemaTooNew:
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
                    catalog.manifest(), catalog.files(), catalog.segment_owners(), catalog.homeless_shot_files()
                )
    except CorruptIndex as e:
        damage = e.message
    finally:
        catalog.close()
    if damage is not None:
        report.problems.append(Problem("catalog", f"catalog is damaged: {damage}", fixable=True, fatal=True))
        return None
    return view


def _check_once(index_dir: Path) -> CheckReport:
    report = CheckReport(index=display_path(index_dir))
    view = _read_catalog(index_dir, report)
    if view is None:
        return report
    raw, files, owners = view.raw, view.files, view.owners
    report.files, report.segments = len(files), len(owners)
    if view.homeless_shots:
        report.problems.append(
            Problem("orphan-shots", f"shots of {len(view.homeless_shots)} file id(s) without a file row", True)
        )
    report.stale = [r.path for r in files if not os.path.lexists(fs_path(r))]
    latest = catalog_module.SCHEMA_VERSION  # looked up now: tests add a migration to simulate an upgrade
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
        manifest = Manifest.from_catalog_values(raw, index_dir)
    except CorruptIndex as e:
        report.problems.append(Problem("manifest", e.message, fixable=True, fatal=True))
        return report
    report.generation = manifest.generation
    store = _load_live(index_dir, manifest, report)
    if store is not None:
        try:
            _compare(store, files, owners, report)
        finally:
            store.close()
    _check_strays(index_dir, manifest.generation, report)
    return report


def _check_strays(index_dir: Path, generation: int, report: CheckReport) -> None:
    if writer_active(index_dir):
        report.notes.append("a writer is indexing now: this is its last commit; temporary files not checked")
        return
    strays = stale_generation_files(index_dir, generation)
    if strays and (writer_active(index_dir) or _live_generation(index_dir) != generation):
        report.notes.append("a writer committed during the check; temporary files not checked")
        return
    for stray in strays:
        report.problems.append(Problem("stray-file", f"stray file {display_path(stray)}", fixable=True))


def _load_live(index_dir: Path, manifest: Manifest, report: CheckReport) -> VectorStore | None:
    if manifest.backend != BACKEND_FAISS:
        # Milvus keeps its own storage: compare against what the server holds.
        return open_store(manifest.raw, index_dir, manifest.generation, "cpu", writer=False, index_type=None)
    path = generation_file(index_dir, manifest.generation)
    if not path.is_file():
        reason = f"live vector file {display_path(path)} is missing"
    elif manifest.checksum is not None and file_checksum(path) != manifest.checksum:
        reason = f"live vector file {display_path(path)} is damaged (checksum differs from the manifest's)"
    else:
        try:
            store = FaissStore.load(path, device="cpu")
        except CorruptIndex as e:
            reason = e.message
        else:
            if store.dim == manifest.dim:
                _check_kind(store, manifest, report)
                return store
            store.close()
            if manifest.checksum is not None:  # the file is verified: the manifest is what is wrong
                report.problems.append(
                    Problem(
                        "manifest",
                        f"manifest says dimension {manifest.dim}, its verified vector file has {store.dim}; "
                        "repair corrects the manifest",
                        fixable=True,
                        fatal=True,
                    )
                )
                return None
            reason = f"live vector file has dimension {store.dim}, the manifest says {manifest.dim}"
    report.problems.append(
        Problem(
            "vectors",
            f"{reason}; repair recovers what the previous generation holds and re-indexes the rest "
            f"of its {report.files} file(s)",
            fixable=True,
            fatal=True,
        )
    )
    return None


def _check_kind(store: FaissStore, manifest: Manifest, report: CheckReport) -> None:
    recorded = manifest.raw.get("index_type")
    if recorded is not None:
        try:
            plan_from_manifest(recorded, manifest.raw.get("index_params", ""))
        except ValueError as e:
            report.problems.append(Problem("manifest", f"manifest's index type does not read ({e})", True, fatal=True))
            return
    if recorded is not None and recorded != store.kind:
        report.problems.append(
            Problem("manifest", f"manifest says index type {recorded!r}, the vector file holds {store.kind!r}", True)
        )


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
