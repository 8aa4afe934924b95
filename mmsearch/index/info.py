"""What an index holds, for `mmsearch info`."""

from __future__ import annotations

from pathlib import Path

from ..paths import display_path
from .manifest import index_size_bytes, open_reader


def index_info(index_dir: Path) -> dict[str, object]:
    catalog, manifest, store = open_reader(index_dir, device="cpu")
    try:
        return {
            "index": display_path(index_dir),
            "files": catalog.file_count(),
            "segments": catalog.counts(),
            "vectors": store.ntotal,
            "model": manifest.model,
            "model_untrained": manifest.untrained,
            "dim": manifest.dim,
            "backend": manifest.backend,
            "index_type": manifest.raw.get("index_type", "flat" if manifest.backend == "faiss" else "milvus"),
            "generation": manifest.generation,
            "schema_version": catalog.schema_version(),
            "size_bytes": index_size_bytes(index_dir),
            "failed": [{"path": p, "sha256": sha, "reason": r} for p, sha, r in catalog.failures().values()],
        }
    finally:
        catalog.close()
        store.close()
