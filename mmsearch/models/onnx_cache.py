"""What every ONNX export of mmsearch shares: the cache directory, hashes naming weights, making an export once
(under a file lock, staged so a half-made export is never used) and onnxruntime sessions.

Imports only the standard library and numpy at module level: the query path loads cached exports through here
without torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import WeightsUnavailable

CACHE_ENV = "MMSEARCH_CACHE"
META_FILE = "meta.json"
# onnxruntime's execution providers by device: CUDA first when asked for and present, the CPU always last.
CPU_PROVIDERS = ("CPUExecutionProvider",)
CUDA_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def cache_root() -> Path:
    """$MMSEARCH_CACHE/onnx, else the platform's user cache dir (~/.cache/mmsearch/onnx, honours XDG_CACHE_HOME)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser() / "onnx"
    import platformdirs

    return Path(platformdirs.user_cache_dir("mmsearch")) / "onnx"


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def file_sha256(path: Path) -> str:
    """sha256 of a weights file, remembered by (path, size, mtime) so a 350 MB file is read once, not every run."""
    if not path.is_file():
        raise WeightsUnavailable(
            f"checkpoint {path} does not exist",
            hint=f"pass an existing open_clip checkpoint: --model ARCH:/path/to/model.bin (not {path})",
        )
    stat = path.stat()
    memo = cache_root() / "hashes.json"
    ident = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    known = json.loads(memo.read_text()) if memo.is_file() else {}
    if ident not in known:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        known[ident] = digest.hexdigest()
        memo.parent.mkdir(parents=True, exist_ok=True)
        staging = memo.with_name(f"{memo.name}.{os.getpid()}")
        staging.write_text(json.dumps(known, indent=1))
        staging.replace(memo)  # two processes hashing at once never leave a torn file
    return str(known[ident])


def cached_export(directory: Path, make: Callable[[Path], None]) -> Path:
    """`directory`, made by `make(staging)` first when it has no meta.json yet (one process makes it; others wait)."""
    if (directory / META_FILE).is_file():  # the common case, without taking the lock
        return directory
    from filelock import FileLock

    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory) + ".lock"):
        if not (directory / META_FILE).is_file():
            staging = directory.with_name(directory.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            make(staging)
            shutil.rmtree(directory, ignore_errors=True)
            staging.rename(directory)
    return directory


def cuda_available() -> bool:
    """onnxruntime was built with CUDA and sees a device (onnxruntime-gpu); False for the CPU-only wheel."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def session(path: Path, providers: tuple[str, ...] = CPU_PROVIDERS, threads: int = 0) -> Any:
    """An onnxruntime session, fully optimised; `threads` 0 lets onnxruntime use every core."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # onnxruntime warns about unused initialisers of the export
    # Idle intra-op threads sleep instead of spinning: ingest decodes in another thread at the same time, and on a
    # busy 2-core machine spinning made int8 ViT-B-32 run at 3.8 instead of 5.6 frames/s (benchmarks/README.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=list(providers))
