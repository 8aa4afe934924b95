"""The manifest of an index (which model built it, which vector generation is live) and opening it for reading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptIndex, IndexNotFound, ModelMismatch
from ..models.spec import DEFAULT_MODEL
from ..paths import CATALOG_FILE, display_path
from ..stores.faiss_store import REPAIR_HINT, Device, generation_file, verify_checksum
from ..stores.protocol import BACKEND_FAISS, BACKENDS, VectorStore, open_store
from .catalog import Catalog

# A reader re-reads the manifest this often when the generation it named was replaced before it could open it.
READER_ATTEMPTS = 20
# Readers verify the checksum of vector files up to this size on every open (about 0.2 s on one core);
# larger files are verified by `mmsearch check`, which always reads every byte.
VERIFY_ON_OPEN_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Manifest:
    model: str
    dim: int
    untrained: bool
    backend: str
    generation: int
    raw: dict[str, str]

    @classmethod
    def from_catalog(cls, catalog: Catalog, index_dir: Path) -> Manifest:
        return cls.from_catalog_values(catalog.manifest(), index_dir)

    @property
    def checksum(self) -> str | None:
        """`sha256:HEX` of the live vector file (None for indexes written before checksums, and for Milvus)."""
        return self.raw.get("vectors_checksum")

    @classmethod
    def from_catalog_values(cls, raw: dict[str, str], index_dir: Path) -> Manifest:
        try:
            manifest = cls(
                model=raw["model"],
                dim=int(raw["dim"]),
                untrained=raw.get("model_untrained") == "1",
                backend=raw.get("backend", BACKEND_FAISS),
                generation=int(raw["vectors_generation"]),
                raw=raw,
            )
        except KeyError as e:
            raise CorruptIndex(
                f"index {display_path(index_dir)} has an incomplete manifest (missing {e})",
                hint="if its first index run was interrupted, run `mmsearch index PATH` again",
            ) from e
        except ValueError as e:
            raise CorruptIndex(f"index {display_path(index_dir)} has a damaged manifest ({e})", hint=REPAIR_HINT) from e
        if manifest.dim < 1 or manifest.generation < 0 or manifest.backend not in BACKENDS:
            raise CorruptIndex(
                f"index {display_path(index_dir)} has a damaged manifest (dim {manifest.dim}, generation "
                f"{manifest.generation}, backend {manifest.backend!r})",
                hint=REPAIR_HINT,
            )
        return manifest


@dataclass(frozen=True)
class SpaceInfo:
    """An extra vector space of the index (beside CLIP): the model that fills it and its dimension."""

    model: str
    dim: int


def space_infos(raw: dict[str, str]) -> dict[str, SpaceInfo]:
    """Spaces recorded in the manifest as `space.NAME.model` / `space.NAME.dim`."""
    found = {}
    for key, model in raw.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "space" and parts[2] == "model":
            found[parts[1]] = SpaceInfo(model, int(raw.get(f"space.{parts[1]}.dim", "0")))
    return found


def check_model(manifest: Manifest, requested: str | None) -> None:
    if requested and requested != manifest.model:
        raise ModelMismatch(
            f"the index was built with model {manifest.model!r}, not {requested!r}",
            hint="query without --model to use the index's model, or build another index with --index DIR",
        )


def require_index(index_dir: Path) -> Path:
    catalog = index_dir / CATALOG_FILE
    if not catalog.is_file():
        raise IndexNotFound(
            f"no index at {display_path(index_dir)}",
            hint="build one with `mmsearch index PATH`, or point to it with --index DIR / MMSEARCH_INDEX",
        )
    return catalog


def resolve_model(index_dir: Path, requested: str | None) -> str:
    """`--model` if given, else the model that built the existing index, else the default."""
    return requested or saved_manifest(index_dir).get("model") or DEFAULT_MODEL


def saved_manifest(index_dir: Path) -> dict[str, str]:
    """The manifest of an existing index, read-only; empty when there is none or it cannot be read (a first run
    killed as it began, a damaged catalog: the writer says which when it opens it)."""
    path = index_dir / CATALOG_FILE
    if not path.is_file() or path.stat().st_size == 0:
        return {}
    try:
        catalog = Catalog.open(path, readonly=True)
    except CorruptIndex:
        return {}
    try:
        return catalog.manifest()
    except CorruptIndex:
        return {}
    finally:
        catalog.close()


def open_reader(index_dir: Path, device: Device = "auto") -> tuple[Catalog, Manifest, VectorStore]:
    """The last committed state: catalog (read-only) and the vector store its manifest names.

    A writer may commit (and retire the generation the manifest named) between reading the manifest and
    opening its file; the reader then reads the manifest again and opens the generation it names now.
    """
    catalog = Catalog.open(require_index(index_dir), readonly=True)
    try:
        for attempt in range(READER_ATTEMPTS):
            manifest = Manifest.from_catalog(catalog, index_dir)
            try:
                return catalog, manifest, open_generation(manifest, index_dir, device)
            except CorruptIndex:
                replaced = Manifest.from_catalog(catalog, index_dir).generation != manifest.generation
                if not replaced or attempt == READER_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")
    except BaseException:
        catalog.close()
        raise


def open_generation(manifest: Manifest, index_dir: Path, device: Device) -> VectorStore:
    """The store of the manifest's live generation, verified against the manifest (checksum, dimension)."""
    if manifest.backend == BACKEND_FAISS:
        path = generation_file(index_dir, manifest.generation)
        if not path.is_file():
            raise CorruptIndex(f"vector file {display_path(path)} named by the manifest is missing", hint=REPAIR_HINT)
        if path.stat().st_size <= VERIFY_ON_OPEN_BYTES:
            verify_checksum(path, manifest.checksum)
    store = open_store(manifest.raw, index_dir, manifest.generation, device, writer=False, index_type=None)
    if store.dim != manifest.dim:
        store.close()
        raise CorruptIndex(
            f"the vectors of index {display_path(index_dir)} have dimension {store.dim}, its manifest says "
            f"{manifest.dim}",
            hint=REPAIR_HINT,
        )
    return store


def index_size_bytes(index_dir: Path) -> int:
    total = 0
    for path in index_dir.iterdir() if index_dir.is_dir() else ():
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:
            continue  # a generation a writer retired while we counted
    return total
