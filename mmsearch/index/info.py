"""What an index holds, for `mmsearch info` (and the server's `/api/info`, which describes its open reader)."""

from __future__ import annotations

from pathlib import Path

from .facade import Index
from .location import IndexLocation


def _spaces(index: Index) -> dict[str, object]:
    """Every vector space: CLIP (in the vector store) and the extra ones (text, audio), with model and size."""
    manifest, vectors, counts = index.manifest, index.store.ntotal, index.space_counts()
    spaces: dict[str, object] = {"clip": {"model": manifest.model, "dim": manifest.dim, "vectors": vectors}}
    for name, info in index.spaces().items():
        spaces[name] = {"model": info.model, "dim": info.dim, "vectors": counts.get(name, 0)}
    return spaces


def _languages(index: Index) -> dict[str, int]:
    """Files per spoken language (what Whisper heard most in each, or --language), most common first."""
    counts: dict[str, int] = {}
    for record in index.files():
        if record.language:
            counts[record.language] = counts.get(record.language, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def index_info(location: IndexLocation | Path) -> dict[str, object]:
    with Index.read(location, device="cpu") as index:
        return describe_index(index)


def describe_index(index: Index) -> dict[str, object]:
    manifest = index.manifest
    return {
        "index": index.location.label,
        "files": index.file_count(),
        "segments": index.segment_counts(),
        "faces": dict(zip(("tracks", "people"), index.catalog.people_counts(), strict=True)),
        "languages": _languages(index),
        "vectors": index.store.ntotal,
        "model": manifest.model,
        "model_untrained": manifest.untrained,
        "embed_device": manifest.raw.get("embed_device", "unknown"),  # the last run that embedded
        "dim": manifest.dim,
        "spaces": _spaces(index),
        "embed_runtime": manifest.raw.get("embed_runtime"),  # torch / onnx, None for test models
        "embed_precision": manifest.raw.get("embed_precision"),
        "embed_choice": manifest.raw.get("embed_choice") or None,  # --precision auto: the choice and both rates
        "backend": manifest.backend,
        "index_type": index.index_type(),
        "generation": manifest.generation,
        "schema_version": index.catalog.schema_version(),
        "size_bytes": index.size_bytes(),  # null for a shared index: its parts live on servers
        "failed": [{"path": p, "sha256": sha, "reason": r} for p, sha, r in index.failures().values()],
    }
