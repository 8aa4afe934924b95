"""Where an index lives: a local directory (`--index DIR`), or a shared catalog (`--catalog postgresql://…`)
whose manifest names the vector store every host reaches. Commands take one and open it as an `Index`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import CorruptIndex, IndexNotFound
from ..paths import CATALOG_FILE, display_path
from .catalog import Catalog
from .catalog_pg import PgCatalog, redact


@dataclass(frozen=True)
class IndexLocation:
    directory: Path  # a shared index's local directory is only a fallback name (FAISS files never live there)
    catalog_url: str | None = None

    @classmethod
    def of(cls, value: IndexLocation | Path, catalog_url: str | None = None) -> IndexLocation:
        return value if isinstance(value, IndexLocation) else cls(Path(value), catalog_url or None)

    @property
    def shared(self) -> bool:
        return self.catalog_url is not None

    @property
    def label(self) -> str:
        """How messages name the index: its directory, or the catalog URL without its password."""
        return redact(self.catalog_url) if self.catalog_url else display_path(self.directory)

    @property
    def label_path(self) -> Path:
        return Path(self.label) if self.catalog_url else self.directory

    def open_catalog(self, *, readonly: bool) -> Catalog:
        """The catalog: read-only (IndexNotFound when there is none) or for writing (created and migrated)."""
        if self.catalog_url:
            return PgCatalog.open_url(self.catalog_url, readonly=readonly)
        if readonly:
            return Catalog.open(require_index(self.directory), readonly=True)
        return Catalog.open(self.directory / CATALOG_FILE, create=True)

    def saved_manifest(self) -> dict[str, str]:
        """The manifest as it is, read-only; empty when there is none or it cannot be read (a first run killed as it
        began, a damaged catalog: the writer says which when it opens it)."""
        if not self.catalog_url:
            path = self.directory / CATALOG_FILE
            if not path.is_file() or path.stat().st_size == 0:
                return {}
        try:
            catalog = self.open_catalog(readonly=True)
        except (CorruptIndex, IndexNotFound):
            return {}
        try:
            return catalog.manifest()
        except CorruptIndex:
            return {}
        finally:
            catalog.close()


def require_index(index_dir: Path) -> Path:
    catalog = index_dir / CATALOG_FILE
    if not catalog.is_file():
        raise IndexNotFound(
            f"no index at {display_path(index_dir)}",
            hint="build one with `mmsearch index PATH`, or point to it with --index DIR / MMSEARCH_INDEX",
        )
    return catalog
