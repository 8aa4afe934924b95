"""What an index holds, for `mmsearch info` (and the server's `/api/info`, which describes its open reader)."""

from __future__ import annotations

from pathlib import Path

from ..paths import display_path
from ..stores.protocol import VectorStore
from .catalog import Catalog
from .manifest import Manifest, index_size_bytes, open_reader, space_infos


def _spaces(model: str, dim: int, vectors: int, raw: dict[str, str], counts: dict[str, int]) -> dict[str, object]:
    """Every vector space: CLIP (in the vector store) and the extra ones (text, audio), with model and size."""
    spaces: dict[str, object] = {"clip": {"model": model, "dim": dim, "vectors": vectors}}
    for name, info in space_infos(raw).items():
        spaces[name] = {"model": info.model, "dim": info.dim, "vectors": counts.get(name, 0)}
    return spaces


def index_info(index_dir: Path) -> dict[str, object]:
    catalog, manifest, store = open_reader(index_dir, device="cpu")
    try:
        return describe_index(index_dir, catalog, manifest, store)
    finally:
        catalog.close()
        store.close()


def describe_index(index_dir: Path, catalog: Catalog, manifest: Manifest, store: VectorStore) -> dict[str, object]:
    return {
        "index": display_path(index_dir),
        "files": catalog.file_count(),
        "segments": catalog.counts(),
        "faces": dict(zip(("tracks", "people"), catalog.people_counts(), strict=True)),
        "vectors": store.ntotal,
        "model": manifest.model,
        "model_untrained": manifest.untrained,
        "embed_device": manifest.raw.get("embed_device", "unknown"),  # the last run that embedded
        "dim": manifest.dim,
        "spaces": _spaces(manifest.model, manifest.dim, store.ntotal, manifest.raw, catalog.space_counts()),
        "embed_runtime": manifest.raw.get("embed_runtime"),  # torch / onnx, None for test models
        "embed_precision": manifest.raw.get("embed_precision"),
        "backend": manifest.backend,
        "index_type": manifest.raw.get("index_type", "flat" if manifest.backend == "faiss" else "milvus"),
        "generation": manifest.generation,
        "schema_version": catalog.schema_version(),
        "size_bytes": index_size_bytes(index_dir),
        "failed": [{"path": p, "sha256": sha, "reason": r} for p, sha, r in catalog.failures().values()],
    }
