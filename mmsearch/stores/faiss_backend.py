"""The FAISS entry of the store registry: vector generations as files in the index directory.

Readers memory-map the live generation and verify its checksum when it is small enough to read on every open;
the writer always verifies (carrying damaged vectors into the next generation would give them a valid checksum).
`check` reads every byte; `check --repair` takes the live generation if its checksum holds, else the previous one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import REPAIR_HINT, CorruptIndex, UsageError
from ..paths import VECTORS_PREFIX, VECTORS_SUFFIX, display_path
from .faiss_files import file_checksum, generation_file, generation_of, stale_generation_files, verify_checksum
from .faiss_index import check_index_type, plan_from_manifest
from .faiss_store import FaissStore
from .protocol import Device, Recovered, StoreConfig, StoreFault, VectorStore

# Readers verify the checksum of vector files up to this size on every open (about 0.2 s on one core);
# larger files are verified by `mmsearch check`, which always reads every byte.
VERIFY_ON_OPEN_BYTES = 256 * 2**20


class FaissBackend:
    name = "faiss"

    def check_options(self, config: StoreConfig) -> None:
        if config.uri or config.collection:
            raise UsageError("--uri and --collection go with --backend milvus")
        if config.index_type is not None:
            check_index_type(config.index_type)

    def check_existing(self, raw: dict[str, str], config: StoreConfig) -> None:
        """Nothing to compare: the files are in the index directory."""

    def reachable_from_other_hosts(self, config: StoreConfig) -> bool:
        return False  # files in one host's index directory

    def create(self, config: StoreConfig, index_dir: Path, dim: int, device: Device) -> VectorStore:
        return FaissStore.create(dim, device, config.index_type or "auto")

    def open(
        self, raw: dict[str, str], index_dir: Path, device: Device, *, writer: bool, index_type: str | None = None
    ) -> VectorStore:
        path = generation_file(index_dir, int(raw["vectors_generation"]))
        if not path.is_file():
            raise CorruptIndex(f"vector file {display_path(path)} named by the manifest is missing", hint=REPAIR_HINT)
        if writer or path.stat().st_size <= VERIFY_ON_OPEN_BYTES:
            verify_checksum(path, raw.get("vectors_checksum"))
        try:
            plan = plan_from_manifest(raw["index_type"], raw.get("index_params", "")) if "index_type" in raw else None
        except ValueError as e:
            raise CorruptIndex(
                f"the manifest's index type of {display_path(index_dir)} is damaged ({e})", hint=REPAIR_HINT
            ) from e
        store = FaissStore.load(path, device, plan, mmap=not writer)
        store.requested = index_type or raw.get("index_type_requested", "auto")
        return store

    def index_type(self, raw: dict[str, str]) -> str:
        return raw.get("index_type", "flat")

    def inspect(self, raw: dict[str, str], index_dir: Path) -> tuple[VectorStore | None, list[StoreFault]]:
        path = generation_file(index_dir, int(raw["vectors_generation"]))
        checksum = raw.get("vectors_checksum")
        if not path.is_file():
            return None, [_lost(f"live vector file {display_path(path)} is missing")]
        if checksum is not None and file_checksum(path) != checksum:
            return None, [
                _lost(f"live vector file {display_path(path)} is damaged (checksum differs from the manifest's)")
            ]
        try:
            store = FaissStore.load(path, device="cpu")
        except CorruptIndex as e:
            return None, [_lost(e.message)]
        dim = int(raw["dim"])
        if store.dim == dim:
            return store, _kind_faults(store, raw)
        store.close()
        if checksum is not None:  # the file is verified: the manifest is what is wrong
            message = (
                f"manifest says dimension {dim}, its verified vector file has {store.dim}; repair corrects the manifest"
            )
            return None, [StoreFault("manifest", message, fixable=True, fatal=True)]
        return None, [_lost(f"live vector file has dimension {store.dim}, the manifest says {dim}")]

    def strays(self, index_dir: Path, live: int) -> list[Path]:
        return stale_generation_files(index_dir, live)

    def retire(self, index_dir: Path, live: int, *, grace: bool = True) -> None:
        for stale in stale_generation_files(index_dir, live) if grace else stale_generation_files(index_dir, live, 0):
            stale.unlink(missing_ok=True)

    def recover(self, raw: dict[str, str], index_dir: Path) -> Recovered:
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

    def newest_generation(self, raw: dict[str, str], index_dir: Path) -> int:
        numbers = [generation_of(p) or 0 for p in _generation_files(index_dir)]
        recorded = raw.get("vectors_generation", "")
        return max([*numbers, int(recorded) if recorded.isdigit() else 0])

    def keep_only(self, index_dir: Path, live: int) -> None:
        for path in index_dir.glob(f"{VECTORS_PREFIX}*"):
            if generation_of(path) != live:
                path.unlink(missing_ok=True)

    def reset(self, index_dir: Path) -> None:
        for path in index_dir.glob(f"{VECTORS_PREFIX}*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)

    def holds_files(self, index_dir: Path) -> bool:
        return any(index_dir.glob(f"{VECTORS_PREFIX}*"))


def _lost(reason: str) -> StoreFault:
    return StoreFault(
        "vectors", f"{reason}; repair recovers what the previous generation holds and re-indexes the rest", True, True
    )


def _kind_faults(store: FaissStore, raw: dict[str, str]) -> list[StoreFault]:
    recorded = raw.get("index_type")
    if recorded is None:
        return []
    try:
        plan_from_manifest(recorded, raw.get("index_params", ""))
    except ValueError as e:
        return [StoreFault("manifest", f"manifest's index type does not read ({e})", True, fatal=True)]
    if recorded != store.kind:
        return [StoreFault("manifest", f"manifest says index type {recorded!r}, the vector file holds {store.kind!r}")]
    return []


def _generation_files(index_dir: Path) -> list[Path]:
    return sorted(index_dir.glob(f"{VECTORS_PREFIX}*{VECTORS_SUFFIX}"), key=lambda p: generation_of(p) or -1)


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
    found = _generation_files(index_dir)
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


def _fallback_dim(index_dir: Path, raw: dict[str, str]) -> int:
    """The manifest's dimension if it reads, else that of any readable generation file."""
    if raw.get("dim", "").isdigit() and int(raw["dim"]) > 0:
        return int(raw["dim"])
    for path in _generation_files(index_dir):
        store = _verified(path, None)
        if store is not None:
            return store.dim
    raise CorruptIndex(
        f"index {display_path(index_dir)}: neither the manifest nor any vector file gives the vector dimension",
        hint="move the index directory aside and index the media again",
    )
