"""An index shared by several hosts: catalog in PostgreSQL (`--catalog URL`), vectors in a store every host
reaches (a Milvus server). The catalog's manifest names the store, so a query host needs only the catalog URL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse

from ..errors import UsageError
from ..stores.protocol import StoreConfig
from ..stores.registry import STORES, store_backend
from .catalog_pg import is_catalog_url, redact

CATALOG_ENV = "MMSEARCH_CATALOG"


def check_shared_options(catalog: str, store: StoreConfig) -> None:
    """A shared catalog needs vectors every worker and query host reaches: a server, not local files."""
    if not is_catalog_url(catalog):
        raise UsageError(f"--catalog must be a postgresql:// URL, got {redact(catalog)!r}")
    if store.backend is None or not store_backend(store.backend).reachable_from_other_hosts(store):
        shared = [name for name, backend in STORES.items() if name != store_backend(None).name]
        raise UsageError(
            f"--catalog URL needs --backend {'|'.join(shared)} --uri http://host:19530",
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
