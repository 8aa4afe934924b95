"""The manifest of an index (which model built it, which vector generation is live) and opening it for reading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import REPAIR_HINT, CorruptIndex, ModelMismatch
from ..models.spec import DEFAULT_MODEL
from ..paths import display_path
from ..stores.protocol import Device, VectorStore
from ..stores.registry import DEFAULT_BACKEND, STORES, backend_of
from .catalog import Catalog
from .location import IndexLocation

# A reader re-reads the manifest this often when the generation it named was replaced before it could open it.
READER_ATTEMPTS = 20


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
                backend=raw.get("backend", DEFAULT_BACKEND),
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
        if manifest.dim < 1 or manifest.generation < 0 or manifest.backend not in STORES:
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


QUERY_MODEL_HINT = "query without --model to use the index's model, or build another index with --index DIR"


def check_model(manifest: Manifest, requested: str | None, hint: str = QUERY_MODEL_HINT) -> None:
    """ModelMismatch when `requested` is not the index's model; `hint` says what to do in the command that ran."""
    if requested and requested != manifest.model:
        raise ModelMismatch(f"the index was built with model {manifest.model!r}, not {requested!r}", hint=hint)


def resolve_model(location: IndexLocation, requested: str | None) -> str:
    """`--model` if given, else the model that built the existing index, else the default."""
    return requested or location.saved_manifest().get("model") or DEFAULT_MODEL


def open_live(location: IndexLocation, device: Device) -> tuple[Catalog, Manifest, VectorStore]:
    """The last committed state: catalog (read-only) and the vector store its manifest names.

    A writer may commit (and retire the generation the manifest named) between reading the manifest and
    opening its store; the reader then reads the manifest again and opens the generation it names now.
    """
    catalog = location.open_catalog(readonly=True)
    try:
        for attempt in range(READER_ATTEMPTS):
            manifest = Manifest.from_catalog(catalog, location.label_path)
            try:
                return catalog, manifest, open_generation(manifest, location, device)
            except CorruptIndex:
                replaced = Manifest.from_catalog(catalog, location.label_path).generation != manifest.generation
                if not replaced or attempt == READER_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")
    except BaseException:
        catalog.close()
        raise


def open_generation(manifest: Manifest, location: IndexLocation, device: Device) -> VectorStore:
    """The store of the manifest's live generation, verified against the manifest (checksum, dimension)."""
    store = backend_of(manifest.raw).open(manifest.raw, location.directory, device, writer=False)
    if store.dim != manifest.dim:
        store.close()
        raise CorruptIndex(
            f"the vectors of index {location.label} have dimension {store.dim}, its manifest says {manifest.dim}",
            hint=REPAIR_HINT,
        )
    return store
