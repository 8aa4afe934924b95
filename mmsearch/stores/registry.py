"""The store registry: backend name -> what that kind of store can do (`protocol.StoreBackend`).

A new vector store is one module in stores/ and one entry here; `--backend` lists what is registered.
"""

from __future__ import annotations

from ..errors import REPAIR_HINT, CorruptIndex, UsageError
from .faiss_backend import FaissBackend
from .milvus_store import MilvusBackend
from .protocol import StoreBackend, StoreConfig

DEFAULT_BACKEND = "faiss"
STORES: dict[str, StoreBackend] = {backend.name: backend for backend in (FaissBackend(), MilvusBackend())}


def store_backend(name: str | None) -> StoreBackend:
    """The backend `--backend NAME` asks for (None: the default)."""
    try:
        return STORES[name or DEFAULT_BACKEND]
    except KeyError:
        raise UsageError(f"--backend must be one of {', '.join(STORES)}, got {name!r}") from None


def check_store_options(config: StoreConfig) -> None:
    """UsageError for a backend that is not registered or options it cannot take, before anything is created."""
    store_backend(config.backend).check_options(config)


def backend_of(raw: dict[str, str]) -> StoreBackend:
    """The backend an index's manifest names."""
    name = raw.get("backend", DEFAULT_BACKEND)
    if name not in STORES:
        raise CorruptIndex(f"the manifest names an unknown vector backend {name!r}", hint=REPAIR_HINT)
    return STORES[name]
