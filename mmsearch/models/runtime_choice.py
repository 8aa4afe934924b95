"""`--precision auto` on a CPU: the image tower runtime chosen by measurement, once per machine and set of weights.

int8 ONNX is not always the faster (issue 25 measured 2.11x on an idle machine, 1.20x inside a real ingest, and
on some CPUs without VNNI int8 loses to fp32). So the first `auto` run on a machine embeds the same probe images
with both candidates -- ONNX (int8 when it passes its self-check, else its fp32 fallback) and PyTorch fp32 --
best of ROUNDS, preprocessing included, and keeps the faster. The measurement is cached per machine (CPU model,
core count, onnxruntime and torch versions) and weights in `cache_root()/runtime-choice.json`, so later runs load
only the winner; the index manifest and `mmsearch info` show the choice, both rates and the load average when
measured. Deleting that file measures again (e.g. after measuring on a busy machine).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from .onnx_cache import cache_root

CHOICE_FILE = "runtime-choice.json"
# Images per timed call and timed calls per candidate (after one warm-up call): 8 ViT-B-32 frames take ~1 s on
# one core, so a measurement costs a few seconds once per machine.
BATCH = 8
ROUNDS = 2


@dataclass(frozen=True)
class Measured:
    """Frames/s of each candidate on this machine and the one chosen (a key of `rates`, e.g. onnx-int8)."""

    choice: str
    rates: dict[str, float]
    machine: str
    load: float = -1.0  # the load average when measured (-1: unknown): a busy machine's rates are noisier

    def describe(self) -> str:
        rates = ", ".join(f"{name} {rate:.2f} frames/s" for name, rate in self.rates.items())
        load = f", load average {self.load:.1f}" if self.load >= 0 else ""
        return f"{self.choice} (auto, faster on this machine: {rates}{load})"


def machine_ident() -> str:
    """What decides which runtime is faster: the CPU, the cores this process may use, the runtimes' versions."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu} x{cores} onnxruntime {_version('onnxruntime')} torch {_version('torch')}"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def frames_per_second(embed: Callable[[Sequence[np.ndarray]], np.ndarray], images: Sequence[np.ndarray]) -> float:
    embed(images)  # warm-up: first-call allocations, lazy sessions
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        embed(images)
        best = min(best, time.perf_counter() - start)
    return len(images) / best


def cached(weights: str) -> Measured | None:
    path = cache_root() / CHOICE_FILE
    known = json.loads(path.read_text()) if path.is_file() else {}
    raw = known.get(f"{weights}|{machine_ident()}")
    return None if raw is None else Measured(raw["choice"], raw["rates"], raw["machine"], raw.get("load", -1.0))


def remember(weights: str, measured: Measured) -> None:
    path = cache_root() / CHOICE_FILE
    known = json.loads(path.read_text()) if path.is_file() else {}
    known[f"{weights}|{measured.machine}"] = asdict(measured)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{path.name}.{os.getpid()}")
    staging.write_text(json.dumps(known, indent=1))
    staging.replace(path)


def measure(
    candidates: dict[str, Callable[[Sequence[np.ndarray]], np.ndarray]], images: Sequence[np.ndarray]
) -> Measured:
    rates = {name: round(frames_per_second(embed, images[:BATCH]), 2) for name, embed in candidates.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else -1.0
    return Measured(max(rates, key=lambda name: rates[name]), rates, machine_ident(), round(load, 2))
