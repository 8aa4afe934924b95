"""An index shared by several hosts: catalog in PostgreSQL (`--catalog URL`), vectors in a Milvus server.

The catalog's manifest names the Milvus URI and collection, so a query host needs only the catalog URL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse
from pathlib import Path

from ..errors import UsageError
from ..models.spec import DEFAULT_MODEL
from ..stores.faiss_store import Device
from ..stores.protocol import BACKEND_MILVUS, StoreConfig, VectorStore, open_store
from .catalog_pg import PgCatalog, is_catalog_url, redact
from .manifest import Manifest

CATALOG_ENV = "MMSEARCH_CATALOG"


def check_shared_options(catalog: str, store: StoreConfig) -> None:
    """A shared catalog needs vectors every worker and query host reaches: a Milvus server, not local files."""
    from ..stores.milvus_store import is_server_uri

    if not is_catalog_url(catalog):
        raise UsageError(f"--catalog must be a postgresql:// URL, got {redact(catalog)!r}")
    if store.backend != BACKEND_MILVUS or not store.uri or not is_server_uri(store.uri):
        raise UsageError(
            "--catalog URL needs --backend milvus --uri http://host:19530",
            hint="FAISS files and milvus-lite files live on one host; several workers need a Milvus server",
        )


def catalog_collection(url: str) -> str:
    """mmsearch_<database>_<hash of server and database>: one collection per shared catalog."""
    parts = urllib.parse.urlsplit(url)
    where = f"{parts.hostname}:{parts.port}{parts.path}"
    name = re.sub(r"[^A-Za-z0-9_]", "_", parts.path.strip("/") or "catalog")[:40]
    return f"mmsearch_{name}_{hashlib.sha1(where.encode()).hexdigest()[:10]}"


def shared_store_config(catalog: str | None, store: StoreConfig) -> StoreConfig:
    if catalog is None or store.collection is not None:
        return store
    return dataclasses.replace(store, collection=catalog_collection(catalog))


def open_shared_reader(url: str, device: Device = "auto") -> tuple[PgCatalog, Manifest, VectorStore]:
    """The committed state of a shared index: the catalog (read-only) and the Milvus collection it names."""
    catalog = PgCatalog.open_url(url, readonly=True)
    try:
        manifest = Manifest.from_catalog_values(catalog.manifest(), Path(redact(url)))
        store = open_store(manifest.raw, Path("."), manifest.generation, device, writer=False, index_type=None)
    except BaseException:
        catalog.close()
        raise
    return catalog, manifest, store


def resolve_shared_model(url: str, requested: str | None) -> str:
    """`--model` if given, else the model that built the shared index, else the default."""
    if requested:
        return requested
    catalog = PgCatalog.open_url(url)
    try:
        return catalog.manifest().get("model") or DEFAULT_MODEL
    finally:
        catalog.close()
