"""Which runtime and precision run the CLIP towers (`--runtime`, `--precision`), and loading them so.

auto   fp16 PyTorch on CUDA; on the CPU the faster, measured once per machine (runtime_choice.py), of ONNX (int8
       when it passes its self-check, else fp32) and PyTorch fp32
fp32   PyTorch (or ONNX with --runtime onnx)
fp16   PyTorch on CUDA only (CPUs have no fast fp16 matmul)
int8   ONNX on the CPU, self-checked against fp32 (falls back to fp32 and says so)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import MMSearchError, UsageError
from .clip import Embedder, OpenClipEmbedder
from .hub import resolve_device
from .spec import ModelSpec

RUNTIMES = ("torch", "onnx")
PRECISIONS = ("auto", "fp32", "fp16", "int8")
CLIP_FAMILIES = ("open_clip", "random")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedChoice:
    runtime: str | None = None  # None: what `precision` implies
    precision: str = "auto"
    check_first_batch: bool = True  # int8: compare the first real images with fp32 too (index time)

    def validate(self) -> None:
        if self.runtime is not None and self.runtime not in RUNTIMES:
            raise UsageError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.runtime == "torch" and self.precision == "int8":
            raise UsageError("--precision int8 runs in ONNX: use --runtime onnx (or leave --runtime out)")
        if self.runtime == "onnx" and self.precision == "fp16":
            raise UsageError("--precision fp16 runs in PyTorch on CUDA: use --runtime torch")

    def resolve(self, device: str) -> tuple[str, str]:
        """(runtime, precision) on the resolved `device`; int8 may still fall back to fp32 after its self-check."""
        self.validate()
        if device == "cpu":
            if self.precision == "fp16":
                raise UsageError("--precision fp16 needs a CUDA GPU; on the CPU use auto, int8 or fp32")
            if self.precision in ("auto", "int8"):
                return (self.runtime or "onnx", "int8" if (self.runtime or "onnx") == "onnx" else "fp32")
            return (self.runtime or "torch", "fp32")
        # CUDA (or another accelerator): the ONNX export here runs on onnxruntime's CPU provider only.
        if self.runtime == "onnx" or self.precision == "int8":
            raise UsageError("int8 / ONNX embedding runs on the CPU: add --device cpu, or use --precision auto|fp16")
        return ("torch", "fp32" if self.precision == "fp32" else "fp16")

    @classmethod
    def of_index(cls, manifest: dict[str, str], device: str) -> EmbedChoice | None:
        """The towers that built an index, for its queries (the text tower of an int8 index is int8 too).
        None for indexes that record none (older ones, test models), and on a GPU: fp16 there agrees with both."""
        runtime = manifest.get("embed_runtime")
        if runtime not in RUNTIMES or resolve_device(device) != "cpu":
            return None
        return cls(runtime, manifest.get("embed_precision", "fp32"), check_first_batch=False)


def load_clip(spec: ModelSpec, device: str, choice: EmbedChoice) -> Embedder:
    torch_device = resolve_device(device)
    runtime, precision = choice.resolve(torch_device)
    if torch_device == "cpu" and choice.precision == "auto" and choice.runtime is None and choice.check_first_batch:
        return _measured_choice(spec, choice)  # indexing: the faster of ONNX and PyTorch on this machine
    if runtime == "torch":
        return OpenClipEmbedder.load(spec, torch_device, precision)
    from .onnx_runtime import OnnxClipEmbedder

    try:
        return OnnxClipEmbedder.load(spec, precision, check_first_batch=choice.check_first_batch)
    except MMSearchError:
        raise
    except Exception as e:  # an architecture the ONNX exporter cannot trace; asked-for ONNX must say so
        if choice.runtime is not None or choice.precision != "auto":
            raise UsageError(f"cannot export {spec.raw} to ONNX: {e}", hint="use --runtime torch") from e
        log.warning("cannot export %s to ONNX (%s); embedding with PyTorch fp32", spec.raw, e)
        return OpenClipEmbedder.load(spec, torch_device, "fp32")


def _measured_choice(spec: ModelSpec, choice: EmbedChoice) -> Embedder:
    """The faster on this machine of ONNX (int8 when it passes its self-check) and PyTorch fp32, measured once per
    machine and weights (`runtime_choice.py`); the embedder carries the measurement for the manifest."""
    from . import runtime_choice
    from .onnx_runtime import OnnxClipEmbedder, probe_images, weights_key

    try:
        onnx = OnnxClipEmbedder.load(spec, "int8", check_first_batch=False)
    except MMSearchError:
        raise
    except Exception as e:  # an architecture the ONNX exporter cannot trace
        log.warning("cannot export %s to ONNX (%s); embedding with PyTorch fp32", spec.raw, e)
        return OpenClipEmbedder.load(spec, "cpu", "fp32")
    onnx_name = f"onnx-{onnx.precision}"
    weights = f"{weights_key(spec)}:{onnx_name}"
    measured = runtime_choice.cached(weights)
    if measured is None:
        torch_fp32 = OpenClipEmbedder.load(spec, "cpu", "fp32")
        images = probe_images()
        measured = runtime_choice.measure({onnx_name: onnx.embed_images, "torch-fp32": torch_fp32.embed_images}, images)
        runtime_choice.remember(weights, measured)
        log.info("runtime for %s on this CPU: %s", spec.raw, measured.describe())
    chosen: Embedder
    if measured.choice == "torch-fp32":
        chosen = OpenClipEmbedder.load(spec, "cpu", "fp32")
    else:
        chosen = OnnxClipEmbedder.load(spec, "int8", check_first_batch=choice.check_first_batch)
    chosen.measured_choice = measured.describe()
    return chosen


# Every manifest key a runtime may record; a later run writes all of them, so none is left from an earlier one.
RECORD_KEYS = (
    "embed_runtime",
    "embed_precision",
    "embed_image_int8_cos",
    "embed_text_int8_cos",
    "embed_int8_score_drift",
    "embed_first_batch_int8_cos",
    "embed_int8_fallback",
    "embed_choice",  # --precision auto on a CPU: what was chosen and both measured rates
)


def runtime_record(embedder: Embedder) -> dict[str, str]:
    """Manifest entries naming the towers' runtime, precision and measured agreement (empty for test embedders)."""
    record = getattr(embedder, "runtime_record", None)
    if not callable(record):
        return {}
    values = {**record(), "embed_choice": str(getattr(embedder, "measured_choice", ""))}
    return {key: values.get(key, "") for key in RECORD_KEYS}
