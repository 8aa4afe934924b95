"""The manifest of an index (which model built it, which vector generation is live) and opening it for reading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptIndex, IndexNotFound, ModelMismatch
from ..models.spec import DEFAULT_MODEL
from ..paths import CATALOG_FILE, display_path
from ..stores.faiss_store import REPAIR_HINT, Device, generation_file
from ..stores.protocol import BACKEND_FAISS, VectorStore, open_store
from .catalog import Catalog


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

    @classmethod
    def from_catalog_values(cls, raw: dict[str, str], index_dir: Path) -> Manifest:
        try:
            return cls(
                model=raw["model"],
                dim=int(raw["dim"]),
                untrained=raw.get("model_untrained") == "1",
                backend=raw.get("backend", BACKEND_FAISS),
                generation=int(raw["vectors_generation"]),
                raw=raw,
            )
        except (KeyError, ValueError) as e:
            raise CorruptIndex(
                f"index {display_path(index_dir)} has an incomplete manifest (missing {e})",
                hint="if its first index run was interrupted, run `mmsearch index PATH` again",
            ) from e


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
    if requested:
        return requested
    if (index_dir / CATALOG_FILE).is_file():
        catalog = Catalog.open(index_dir / CATALOG_FILE, readonly=True)
        try:
            model = catalog.manifest().get("model")
        finally:
            catalog.close()
        if model:
            return model
    return DEFAULT_MODEL


def open_reader(index_dir: Path, device: Device = "auto") -> tuple[Catalog, Manifest, VectorStore]:
    """The last committed state: catalog (read-only) and the vector store its manifest names."""
    catalog = Catalog.open(require_index(index_dir), readonly=True)
    try:
        manifest = Manifest.from_catalog(catalog, index_dir)
        path = generation_file(index_dir, manifest.generation)
        if manifest.backend == BACKEND_FAISS and not path.is_file():
            raise CorruptIndex(f"vector file {display_path(path)} named by the manifest is missing", hint=REPAIR_HINT)
        store = open_store(manifest.raw, index_dir, manifest.generation, device, writer=False, index_type=None)
    except BaseException:
        catalog.close()
        raise
    return catalog, manifest, store


def index_size_bytes(index_dir: Path) -> int:
    return sum(p.stat().st_size for p in index_dir.iterdir() if p.is_file()) if index_dir.is_dir() else 0
