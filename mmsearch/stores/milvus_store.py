"""Vector store in Milvus: embedded milvus-lite (a file path) or a Milvus server/cluster (http://host:19530).

The SQLite catalog stays the source of truth; Milvus writes are not in its transaction, so the order makes the
two agree on everything a query can see:
  * new vectors are upserted *before* the catalog commit that adds their segments (a crash in between leaves
    vectors whose ids are not in the catalog: queries skip ids the catalog does not know);
  * removed vectors are deleted *after* the catalog commit that removes their segments (a crash in between
    leaves the same kind of harmless orphans);
  * the writer deletes orphans when it opens the index (`sync`), and upsert makes a reused id overwrite.
Scores are inner products of L2-normalised vectors (= cosine), exactly as with FAISS.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, UsageError
from ..paths import display_path
from .protocol import Device, Recovered, SearchResult, StoreConfig, StoreFault, VectorStore, empty_result

log = logging.getLogger(__name__)

ID_FIELD = "id"
VECTOR_FIELD = "vector"
# Milvus answers at most topk 16384 per query.
MILVUS_MAX_K = 16_384
# Rows per upsert call: 2,000 x 512-d float32 = 4 MiB, far below Milvus's 64 MiB gRPC message limit.
UPSERT_BATCH = 2_000
# Ids per delete / get call (they become an `id in [...]` expression).
ID_BATCH = 10_000
TOKEN_ENV = "MILVUS_TOKEN"


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def normalize_uri(uri: str) -> str:
    """Server URIs stay as given; a milvus-lite file path becomes absolute so queries work from any directory."""
    if is_server_uri(uri):
        return uri
    if not uri.endswith(".db"):
        raise UsageError(f"--uri {uri!r} is neither http://host:port nor a milvus-lite file path ending in .db")
    return str(Path(uri).expanduser().resolve())


def default_collection(index_dir: Path) -> str:
    """mmsearch_<dirname>_<hash of host and path>: distinct for distinct index directories, even on other hosts."""
    where = f"{socket.gethostname()}:{index_dir.expanduser().resolve()}"
    name = re.sub(r"[^A-Za-z0-9_]", "_", index_dir.expanduser().resolve().name)[:40]
    return f"mmsearch_{name}_{hashlib.sha1(where.encode()).hexdigest()[:10]}"


def _connect(uri: str) -> Any:
    try:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException
    except ImportError as e:
        raise BackendUnavailable(
            "the Milvus backend needs pymilvus (and milvus-lite for file URIs)",
            hint='pip install "mmsearch[milvus]"',
        ) from e
    # pymilvus configures its own stderr logger when imported; its retry notices are noise unless we log verbosely.
    if not logging.getLogger("mmsearch").isEnabledFor(logging.INFO):
        logging.getLogger("pymilvus").setLevel(logging.ERROR)

    try:
        if is_server_uri(uri):
            return MilvusClient(uri=uri, token=os.environ.get(TOKEN_ENV, ""))
        return MilvusClient(uri=uri)
    except MilvusException as e:
        hint = (
            "is the Milvus server up and reachable?"
            if is_server_uri(uri)
            else "milvus-lite opens a file in one process at a time: is an `mmsearch index` run still writing it?"
        )
        raise BackendUnavailable(f"cannot open Milvus at {display_path(uri)}: {e.message}", hint=hint) from e


class MilvusStore:
    """One Milvus collection whose primary keys are the catalog's segment ids."""

    def __init__(self, client: Any, uri: str, collection: str, dim: int) -> None:
        self.client = client
        self.uri = uri
        self.collection = collection
        self.dim = dim
        self._upserts: dict[int, np.ndarray] = {}
        self._deletes: set[int] = set()

    @classmethod
    def open(cls, uri: str, collection: str, dim: int) -> MilvusStore:
        client = _connect(uri)
        if not client.has_collection(collection):
            client.close()
            raise BackendUnavailable(
                f"Milvus at {display_path(uri)} has no collection {collection!r} named by the index",
                hint="was the collection dropped? rebuild the index",
            )
        client.load_collection(collection)
        return cls(client, uri, collection, dim)

    @classmethod
    def create(cls, uri: str, collection: str, dim: int) -> MilvusStore:
        """A new collection; an existing one must be empty (another index's vectors are never mixed in)."""
        client = _connect(uri)
        if client.has_collection(collection):
            client.load_collection(collection)
            store = cls(client, uri, collection, dim)
            if held := store.ntotal:
                client.close()
                raise UsageError(
                    f"Milvus collection {collection!r} at {display_path(uri)} already holds {held} vectors",
                    hint="give this index its own --collection NAME, or drop the old collection",
                )
            return store
        from pymilvus import DataType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID_FIELD, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
        params = client.prepare_index_params()
        # milvus-lite: exact FLAT search (parity with faiss flat); servers: AUTOINDEX, Milvus's own ANN choice.
        index_type = "AUTOINDEX" if is_server_uri(uri) else "FLAT"
        params.add_index(field_name=VECTOR_FIELD, index_type=index_type, metric_type="IP")
        # Servers may be written by several workers and read by other hosts: "Strong" makes every search see
        # all writes acknowledged before it (the default, Bounded, lags by up to seconds).
        consistency = {"consistency_level": "Strong"} if is_server_uri(uri) else {}
        client.create_collection(collection, schema=schema, index_params=params, **consistency)
        client.load_collection(collection)
        return cls(client, uri, collection, dim)

    @property
    def ntotal(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, np.float32)
        if len(ids) and vectors.shape[1] != self.dim:
            from ..errors import CorruptIndex

            raise CorruptIndex(f"vector dimension {vectors.shape[1]} does not match the index ({self.dim})")
        for i, v in zip(ids, vectors, strict=True):
            self._upserts[int(i)] = v
            self._deletes.discard(int(i))

    def remove(self, ids: np.ndarray | list[int]) -> int:
        for i in ids:
            self._upserts.pop(int(i), None)
            self._deletes.add(int(i))
        return len(ids)

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        found = {i: self._upserts[i] for i in ids if i in self._upserts}
        missing = [i for i in ids if i not in found]
        for start in range(0, len(missing), ID_BATCH):
            rows = self.client.get(self.collection, ids=missing[start : start + ID_BATCH], output_fields=[VECTOR_FIELD])
            found.update({int(r[ID_FIELD]): np.asarray(r[VECTOR_FIELD], np.float32) for r in rows})
        if not ids:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([found[i] for i in ids]).astype(np.float32)

    def ids(self) -> np.ndarray:
        iterator = self.client.query_iterator(
            self.collection, batch_size=ID_BATCH, filter=f"{ID_FIELD} >= 0", output_fields=[ID_FIELD]
        )
        out: list[int] = []
        try:
            while batch := iterator.next():
                out.extend(int(r[ID_FIELD]) for r in batch)
        finally:
            iterator.close()
        return np.asarray(out, np.int64)

    def search(self, queries: np.ndarray, k: int) -> SearchResult:
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        k = min(k, MILVUS_MAX_K)
        if k <= 0:
            return empty_result(len(queries))
        hits = self.client.search(
            self.collection,
            data=[q.tolist() for q in queries],
            limit=k,
            anns_field=VECTOR_FIELD,
            search_params={"metric_type": "IP"},
            output_fields=[ID_FIELD],
        )
        ids = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        for row, found in enumerate(hits):
            for col, hit in enumerate(found):
                ids[row, col] = int(hit["id"])
                scores[row, col] = float(hit["distance"])
        width = max((len(found) for found in hits), default=0)
        return SearchResult(scores[:, :width], ids[:, :width])

    def persist(self, index_dir: Path, generation: int) -> dict[str, str]:
        """Upsert what was added since the last commit; called before the catalog commits."""
        items = sorted(self._upserts.items())
        for start in range(0, len(items), UPSERT_BATCH):
            rows = [{ID_FIELD: i, VECTOR_FIELD: v.tolist()} for i, v in items[start : start + UPSERT_BATCH]]
            self.client.upsert(self.collection, rows)
        self._upserts.clear()
        return {"milvus_uri": self.uri, "milvus_collection": self.collection}

    def after_commit(self) -> None:
        """Delete what the catalog no longer has; called after the catalog committed its removal."""
        pending = sorted(self._deletes)
        for start in range(0, len(pending), ID_BATCH):
            self.client.delete(self.collection, ids=pending[start : start + ID_BATCH])
        self._deletes.clear()

    def sync(self, catalog_ids: list[int]) -> int:
        """Delete orphans (vectors whose ids the catalog does not hold), left by a crash between the two commits."""
        orphans = np.setdiff1d(self.ids(), np.asarray(catalog_ids, np.int64)).tolist()
        if orphans:
            log.info("deleting %d orphan vectors from Milvus collection %s", len(orphans), self.collection)
            self._deletes.update(int(i) for i in orphans)
            self.after_commit()
        return len(orphans)

    def close(self) -> None:
        self.client.close()


class MilvusBackend:
    """The Milvus entry of the store registry: vectors in a collection the manifest names, nothing on local disk."""

    name = "milvus"

    def check_options(self, config: StoreConfig) -> None:
        if not config.uri:
            raise UsageError("--backend milvus needs --uri (a milvus-lite file path.db or http://host:19530)")
        if config.index_type is not None:
            raise UsageError("--index-type applies to the faiss backend (Milvus chooses its own index)")

    def check_existing(self, raw: dict[str, str], config: StoreConfig) -> None:
        if config.uri is not None and normalize_uri(config.uri) != raw.get("milvus_uri"):
            raise UsageError(f"the index's vectors live at {raw.get('milvus_uri')}, not {config.uri}")

    def reachable_from_other_hosts(self, config: StoreConfig) -> bool:
        return config.uri is not None and is_server_uri(config.uri)  # milvus-lite files live on one host

    def create(self, config: StoreConfig, index_dir: Path, dim: int, device: Device) -> VectorStore:
        assert config.uri is not None  # check_options guarantees it
        return MilvusStore.create(normalize_uri(config.uri), config.collection or default_collection(index_dir), dim)

    def open(
        self, raw: dict[str, str], index_dir: Path, device: Device, *, writer: bool, index_type: str | None = None
    ) -> VectorStore:
        return MilvusStore.open(raw["milvus_uri"], raw["milvus_collection"], int(raw["dim"]))

    def index_type(self, raw: dict[str, str]) -> str:
        return "milvus"

    def inspect(self, raw: dict[str, str], index_dir: Path) -> tuple[VectorStore | None, list[StoreFault]]:
        """Milvus keeps its own storage: what the server holds is compared with the catalog."""
        return self.open(raw, index_dir, "cpu", writer=False), []

    def strays(self, index_dir: Path, live: int) -> list[Path]:
        return []

    def retire(self, index_dir: Path, live: int, *, grace: bool = True) -> None:
        """Nothing to retire: a collection has no generations."""

    def recover(self, raw: dict[str, str], index_dir: Path) -> Recovered:
        return Recovered(self.open(raw, index_dir, "cpu", writer=True))

    def newest_generation(self, raw: dict[str, str], index_dir: Path) -> int:
        return int(raw.get("vectors_generation", "0"))

    def keep_only(self, index_dir: Path, live: int) -> None:
        """Nothing local to drop."""

    def reset(self, index_dir: Path) -> None:
        """The collection is not touched: it may serve other hosts."""

    def holds_files(self, index_dir: Path) -> bool:
        return False
