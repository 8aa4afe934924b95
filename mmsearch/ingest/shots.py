"""Shot boundary detection at ingest (PySceneDetect); query time reports hits as shots (`search/shots.py`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
# OpenCV's ffmpeg log level (AV_LOG_QUIET); read when OpenCV first opens a video. Without it every damaged packet
# prints a raw `[h264 @ 0x…]` line on stderr around the one-line `failed:` reports.
OPENCV_QUIET = "-8"

# AdaptiveDetector compares each frame's content change with its neighbours', so camera motion and
# flashes cause fewer false cuts than a fixed ContentDetector threshold. Shots shorter than this many
# frames are merged into their neighbour (0.12 s at 25 fps: shorter "shots" are flashes, not edits).
MIN_SHOT_FRAMES = 3


def detect_shots(path: Path, duration: float | None) -> list[tuple[float, float]]:
    """[start, end) of every shot in a video, in seconds; one shot spanning the video when there is no cut.

    PySceneDetect decodes every frame with OpenCV, downscaled (auto_downscale) before comparing, which costs
    far less than embedding; see benchmarks/README.md for the measured rate.
    """
    if not log.isEnabledFor(logging.INFO):
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", OPENCV_QUIET)
    from scenedetect import AdaptiveDetector, SceneManager, open_video

    video = open_video(str(path), backend="opencv")
    manager = SceneManager()
    manager.auto_downscale = True
    manager.add_detector(AdaptiveDetector(min_scene_len=MIN_SHOT_FRAMES))
    manager.detect_scenes(video, show_progress=False)
    scenes = [(float(a.seconds), float(b.seconds)) for a, b in manager.get_scene_list(start_in_scene=True)]
    if duration and scenes and scenes[-1][1] < duration:
        # The container's duration can run past the last decoded frame (audio longer than video).
        scenes[-1] = (scenes[-1][0], float(duration))
    return [(a, b) for a, b in scenes if b > a]
