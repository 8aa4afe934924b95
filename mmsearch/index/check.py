"""`mmsearch check`: verify that catalog, vectors and manifest agree, and repair what can be repaired.

Every segment id must have exactly one vector in the live generation and every vector a segment; the manifest
must name the model, dimension and a live generation file that exists and can be read. Files that are indexed
but gone from disk are *stale*, not corrupt: the next `index` of their folder (or `mmsearch remove`) drops them.

Repair never invents data: it drops vectors without a segment, and drops files whose segments lack vectors
(catalog rows included) so that the next `mmsearch index` of their folder embeds them again.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorruptIndex
from ..paths import display_path
from ..stores.faiss_store import FaissStore, generation_file, stale_generation_files
from ..stores.protocol import BACKEND_FAISS, VectorStore, open_store
from . import catalog as catalog_module
from .catalog import Catalog, FileRecord, fs_path
from .lock import writer_active
from .manifest import Manifest, require_index
from .writer import IndexWriter

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


def check_index(index_dir: Path) -> CheckReport:
    """Read-only check of the last committed state. Raises IndexNotFound, CorruptIndex or SchemaTooNew."""
    catalog = Catalog.open(require_index(index_dir), readonly=True)
    report = CheckReport(index=display_path(index_dir))
    try:
        with catalog.snapshot():
            report.schema_version = catalog.schema_version()
            raw = catalog.manifest()
            files = catalog.files()
            owners = catalog.segment_owners()
    finally:
        catalog.close()
    report.files, report.segments = len(files), len(owners)
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
        report.problems.append(
            Problem("manifest", f"manifest lacks {', '.join(missing)} (never committed?)", fixable=False, fatal=True)
        )
        return report
    manifest = Manifest.from_catalog_values(raw, index_dir)
    report.generation = manifest.generation
    store = _load_live(index_dir, manifest, report)
    if store is not None:
        try:
            _compare(store, files, owners, report)
        finally:
            store.close()
    if writer_active(index_dir):
        report.notes.append("a writer is indexing now: this is its last commit; temporary files not checked")
    else:
        for stray in stale_generation_files(index_dir, manifest.generation):
            report.problems.append(Problem("stray-file", f"stray file {display_path(stray)}", fixable=True))
    return report


def _load_live(index_dir: Path, manifest: Manifest, report: CheckReport) -> VectorStore | None:
    if manifest.backend != BACKEND_FAISS:
        # Milvus keeps its own storage: compare against what the server holds.
        return open_store(manifest.raw, index_dir, manifest.generation, "cpu", writer=False, index_type=None)
    path = generation_file(index_dir, manifest.generation)
    if not path.is_file():
        reason = f"live vector file {display_path(path)} is missing"
    else:
        try:
            store = FaissStore.load(path, device="cpu")
        except CorruptIndex as e:
            reason = e.message
        else:
            if store.dim == manifest.dim:
                return store
            reason = f"live vector file has dimension {store.dim}, the manifest says {manifest.dim}"
    report.problems.append(
        Problem("vectors", f"{reason}; repair re-indexes its {report.files} file(s)", fixable=True, fatal=True)
    )
    return None


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


def repair_index(index_dir: Path) -> CheckReport:
    """Fix what `check_index` finds, under the write lock, in one commit; returns the check after repair."""
    before = check_index(index_dir)
    if not any(p.fixable for p in before.problems) or any(p.code == "manifest" for p in before.problems):
        return before
    catalog = Catalog.open(require_index(index_dir), readonly=True)
    try:
        manifest = Manifest.from_catalog(catalog, index_dir)
    finally:
        catalog.close()
    writer = IndexWriter(index_dir, manifest.model, manifest.untrained, device="cpu")
    writer.open()  # takes the lock and applies pending migrations
    with writer:
        store = _repairable_store(index_dir, manifest)
        writer.adopt_store(store)
        repaired = _repair(writer, store)
        writer.commit()
    after = check_index(index_dir)
    after.repaired = [p.message for p in before.problems if p.fixable] + repaired
    return after


def _repairable_store(index_dir: Path, manifest: Manifest) -> VectorStore:
    if manifest.backend != BACKEND_FAISS:
        return open_store(manifest.raw, index_dir, manifest.generation, "cpu", writer=True, index_type=None)
    try:
        store = FaissStore.load(generation_file(index_dir, manifest.generation), device="cpu")
    except CorruptIndex:
        return FaissStore.create(manifest.dim, device="cpu")
    return store if store.dim == manifest.dim else FaissStore.create(manifest.dim, device="cpu")


def _repair(writer: IndexWriter, store: VectorStore) -> list[str]:
    catalog = writer._cat()
    done: list[str] = []
    ids = store.ids().tolist()
    # remove_ids drops every vector with a duplicated id; their files are then re-indexed like any other.
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    store.remove(duplicates)
    owners = catalog.segment_owners()
    files = {r.id: r for r in catalog.files()}
    homeless = [s for s, f in owners.items() if f not in files]
    catalog.remove_segments(homeless)
    have = set(store.ids().tolist())
    store.remove(sorted(have - owners.keys()))
    lacking = {f for s, f in owners.items() if s not in have and f in files}
    for file_id in sorted(lacking):
        writer.remove_file(files[file_id])
        done.append(f"dropped {files[file_id].path} from the index: the next `mmsearch index` re-embeds it")
    return done
