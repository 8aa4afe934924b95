"""`mmsearch check --repair`: make catalog, vectors and manifest agree again, in one commit under the write lock.

Repair never invents data. It salvages the readable rows of a damaged catalog, takes the vectors from the
live generation if its checksum holds, else from the previous generation (kept on disk for readers, with its
checksum in the manifest), and then drops what still disagrees: vectors without a segment, segments without a
file, and files whose segments lack vectors, so that the next `mmsearch index` of their folder embeds them again.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptIndex
from ..paths import BM25_PREFIX, CATALOG_FILE, VECTORS_PREFIX, VECTORS_SUFFIX, display_path
from ..stores.faiss_store import FaissStore, file_checksum, generation_file, generation_of
from ..stores.protocol import BACKEND_FAISS, BACKENDS, VectorStore, open_store
from .check import ALWAYS_SEGMENTED, CheckReport, check_index
from .salvage import Unsalvageable, salvage_catalog, set_aside
from .writer import IndexWriter

# Problems repair handles before the catalog can even be opened.
CATALOG_PROBLEMS = ("catalog", "stillborn")


@dataclass(frozen=True)
class Recovered:
    store: VectorStore
    note: str | None  # what repair had to fall back on, if anything


def repair_index(index_dir: Path) -> CheckReport:
    """Fix what `check_index` finds; returns the check after repair (with what was repaired)."""
    before = check_index(index_dir)
    if not any(p.fixable for p in before.problems):
        return before
    codes = {p.code for p in before.problems}
    done: list[str] = []
    writer = IndexWriter(index_dir, "", untrained=False, device="cpu")
    with writer:
        writer.lock()  # IndexLocked while another writer works
        lost_from = None
        if "catalog" in codes:
            try:
                salvaged = salvage_catalog(index_dir / CATALOG_FILE)
            except Unsalvageable as e:
                return _reset(index_dir, before, e.message)
            lost_from = salvaged.lost_from_file
            done.append(
                f"salvaged the damaged catalog ({_counts(salvaged.copied)}); kept it as {salvaged.kept_as.name}"
            )
        writer.open_catalog()  # applies pending migrations
        raw = writer._cat().manifest()
        if "model" not in raw and not writer._cat().files():
            writer.close(commit=False)  # removes what never held an index
            report = CheckReport(index=before.index)
            report.repaired = ["removed the catalog of a first run that stopped before committing"]
            report.notes = ["run `mmsearch index PATH` to build the index"]
            return report
        if raw.get("backend", BACKEND_FAISS) not in BACKENDS and any(index_dir.glob(f"{VECTORS_PREFIX}*")):
            raw["backend"] = BACKEND_FAISS  # an unknown name beside FAISS generation files: those are the store
            writer._cat().set_manifest({"backend": BACKEND_FAISS})
            done.append("the manifest named an unknown vector backend; set it to faiss, whose files the index has")
        recovered = _recover_vectors(index_dir, raw)
        if recovered.note:
            done.append(recovered.note)
        writer.adopt_store(recovered.store, _newest_generation(index_dir, raw))
        writer._cat().set_manifest({"dim": str(recovered.store.dim)})
        done += _drop_disagreements(writer, recovered.store, lost_from)
        writer.commit()
        _remove_other_generations(index_dir, writer.generation)
    return _after(index_dir, before, done)


def _reset(index_dir: Path, before: CheckReport, why: str) -> CheckReport:
    """No manifest to go by: set the catalog aside and drop the vectors, which nothing can vouch for any more."""
    kept = set_aside(index_dir / CATALOG_FILE)
    for path in [*index_dir.glob(f"{VECTORS_PREFIX}*"), *index_dir.glob(f"{BM25_PREFIX}*")]:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    report = CheckReport(index=before.index)
    report.repaired = [f"{why}: reset the index (the damaged catalog is kept as {kept.name})"]
    report.notes = ["run `mmsearch index PATH --model MODEL` with the index's model to build it again"]
    return report


def _after(index_dir: Path, before: CheckReport, done: list[str]) -> CheckReport:
    after = check_index(index_dir)
    after.repaired = [p.message for p in before.problems if p.fixable] + done
    return after


def _counts(copied: dict[str, int]) -> str:
    return ", ".join(f"{n} {table} row(s)" for table, n in copied.items())


def _verified(path: Path, checksum: str | None) -> FaissStore | None:
    """The store in `path` if the file exists, reads and matches `checksum` (when one was recorded)."""
    if not path.is_file():
        return None
    if checksum is not None and file_checksum(path) != checksum:
        return None
    try:
        return FaissStore.load(path, device="cpu")
    except CorruptIndex:
        return None


def _candidates(index_dir: Path, raw: dict[str, str]) -> list[tuple[Path, str | None, str]]:
    """Generation files to try, best first: the live one, then the previous one (each by number, then by
    checksum among all files, in case the manifest's generation number is what is wrong)."""
    found = sorted(index_dir.glob(f"{VECTORS_PREFIX}*{VECTORS_SUFFIX}"), key=lambda p: generation_of(p) or -1)
    wanted = [
        (raw.get("vectors_generation", ""), raw.get("vectors_checksum"), "live"),
        (raw.get("previous_vectors_generation", ""), raw.get("previous_vectors_checksum"), "previous"),
    ]
    out: list[tuple[Path, str | None, str]] = []
    for number, checksum, label in wanted:
        if number.isdigit():
            out.append((generation_file(index_dir, int(number)), checksum, label))
        if checksum is not None:
            out += [(p, checksum, label) for p in reversed(found)]
    return out


def _recover_vectors(index_dir: Path, raw: dict[str, str]) -> Recovered:
    if raw.get("backend", BACKEND_FAISS) != BACKEND_FAISS:
        generation = int(raw.get("vectors_generation", "0"))
        return Recovered(open_store(raw, index_dir, generation, "cpu", writer=True, index_type=None), None)
    for path, checksum, label in _candidates(index_dir, raw):
        store = _verified(path, checksum)
        if store is None:
            continue
        if label == "live" and checksum is None and str(store.dim) != raw.get("dim"):
            continue  # an unverified file (index written before checksums) that disagrees with the manifest
        store.requested = raw.get("index_type_requested", "auto")
        note = None if label == "live" else f"recovered the vectors of the previous generation from {path.name}"
        return Recovered(store, note)
    dim = _fallback_dim(index_dir, raw)
    return Recovered(FaissStore.create(dim, device="cpu"), "no vector generation could be verified: started empty")


def _fallback_dim(index_dir: Path, raw: dict[str, str]) -> int:
    """The manifest's dimension if it reads, else that of any readable generation file."""
    if raw.get("dim", "").isdigit() and int(raw["dim"]) > 0:
        return int(raw["dim"])
    for path in index_dir.glob(f"{VECTORS_PREFIX}*{VECTORS_SUFFIX}"):
        store = _verified(path, None)
        if store is not None:
            return store.dim
    raise CorruptIndex(
        f"index {display_path(index_dir)}: neither the manifest nor any vector file gives the vector dimension",
        hint="move the index directory aside and index the media again",
    )


def _drop_disagreements(writer: IndexWriter, store: VectorStore, lost_from: int | None) -> list[str]:
    """One pass: duplicates, homeless segments, then orphan vectors (theirs included), then incomplete files."""
    catalog = writer._cat()
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
        writer.remove_file(files[file_id])
        done.append(f"dropped {files[file_id].path} from the index: the next `mmsearch index` re-embeds it")
    return done


def _newest_generation(index_dir: Path, raw: dict[str, str]) -> int:
    """The highest generation the manifest or a file names, so that the repaired one overwrites neither."""
    numbers = [generation_of(p) or 0 for p in index_dir.glob(f"{VECTORS_PREFIX}*{VECTORS_SUFFIX}")]
    recorded = raw.get("vectors_generation", "")
    return max([*numbers, int(recorded) if recorded.isdigit() else 0])


def _remove_other_generations(index_dir: Path, live: int) -> None:
    """After a repair no reader can want a damaged or superseded generation: keep only the new live one."""
    for path in index_dir.glob(f"{VECTORS_PREFIX}*"):
        if generation_of(path) != live:
            path.unlink(missing_ok=True)
