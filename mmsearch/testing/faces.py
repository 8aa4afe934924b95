"""Videos composed from face photographs, with the time each person is on screen known exactly.

A video is a list of scenes joined by hard cuts; a scene shows zero, one or more photos over a plain background,
each at its own height and position, optionally moving (a pan). The photos are the public-domain portraits in
`../shared/faces` (see its SOURCES.txt); a photo's person is the part of its file name before any digits
("obama2.jpg" shows "obama").
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .media import run_ffmpeg

# The photographs tests and benchmarks compose from (never copied into the repository); MMSEARCH_FACES_DIR moves it.
FACES_DIR = Path(os.environ.get("MMSEARCH_FACES_DIR") or Path(__file__).resolve().parents[3] / "shared" / "faces")
BACKGROUND = "0x5a6470"


def person_of(photo: Path) -> str:
    return re.sub(r"\d+$", "", photo.stem)


@dataclass(frozen=True)
class Placement:
    """One photo in a scene: scaled to `height` pixels, its top-left corner at (x, y) and moving by (vx, vy)
    pixels per second; `keep_top` < 1 crops the photo to its upper part first (a standing portrait's head)."""

    photo: Path
    height: int
    x: int = 0
    y: int = 0
    vx: float = 0.0
    vy: float = 0.0
    keep_top: float = 1.0


@dataclass(frozen=True)
class Scene:
    duration: float
    placements: tuple[Placement, ...] = ()


class PersonSpan(NamedTuple):
    person: str
    start: float
    end: float
    photo: str


@dataclass(frozen=True)
class FaceVideo:
    path: Path
    duration: float
    spans: tuple[PersonSpan, ...]

    def spans_of(self, person: str) -> list[tuple[float, float]]:
        return [(s.start, s.end) for s in self.spans if s.person == person]


def _scene_graph(i: int, scene: Scene, first_input: int, size: tuple[int, int], fps: int) -> str:
    w, h = size
    chain = [f"color=c={BACKGROUND}:s={w}x{h}:r={fps}:d={scene.duration}[bg{i}_0]"]
    for j, p in enumerate(scene.placements):
        crop = f"crop=iw:ih*{p.keep_top}:0:0," if p.keep_top < 1 else ""
        chain.append(f"[{first_input + j}:v]{crop}scale=-2:{p.height},setsar=1[ph{i}_{j}]")
        x, y = f"{p.x}+{p.vx}*t", f"{p.y}+{p.vy}*t"
        chain.append(f"[bg{i}_{j}][ph{i}_{j}]overlay=x='{x}':y='{y}':eof_action=repeat[bg{i}_{j + 1}]")
    n = len(scene.placements)
    chain.append(f"[bg{i}_{n}]trim=duration={scene.duration},setpts=PTS-STARTPTS[s{i}]")
    return ";".join(chain)


def compose_faces(
    path: str | Path, scenes: Sequence[Scene], size: tuple[int, int] = (640, 360), fps: int = 10
) -> FaceVideo:
    """Render the scenes, joined by hard cuts, to an H.264 mp4 without sound; return who is on screen when."""
    path = Path(path)
    if not scenes:
        raise ValueError("a video needs at least one scene")
    inputs: list[str] = []
    graphs: list[str] = []
    spans: list[PersonSpan] = []
    start = 0.0
    for i, scene in enumerate(scenes):
        graphs.append(_scene_graph(i, scene, len(inputs) // 2, size, fps))
        for p in scene.placements:
            inputs += ["-i", str(p.photo)]
            spans.append(PersonSpan(person_of(p.photo), start, start + scene.duration, p.photo.name))
        start += scene.duration
    labels = "".join(f"[s{i}]" for i in range(len(scenes)))
    graph = ";".join([*graphs, f"{labels}concat=n={len(scenes)}:v=1:a=0,format=yuv420p[v]"])
    out = ["-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-r", str(fps), "-movflags", "+faststart"]
    run_ffmpeg(*inputs, "-filter_complex", graph, *out, str(path))
    return FaceVideo(path, start, tuple(spans))


def photo(name: str) -> Path:
    """A photo of `../shared/faces` by file name; FileNotFoundError when the folder is not there."""
    found = FACES_DIR / name
    if not found.is_file():
        raise FileNotFoundError(f"face photo {found} not found (tests need ../shared/faces)")
    return found


def archive_scenes() -> dict[str, list[Scene]]:
    """The composed archive the people tests and the benchmark share: file name -> scenes.

    `obama.mp4` shows the official portrait twice (still, then smaller and panning) around an empty scene;
    `pair.mp4` shows Biden and Obama side by side (other photos of both), then Biden's portrait alone at the
    place Obama stood, then Obama at the place Biden stood; `nobody.mp4` shows no one.
    """
    obama, obama2 = photo("obama.jpg"), photo("obama2.jpg")
    biden, biden2 = photo("biden.jpg"), photo("biden2.jpg")
    return {
        "obama.mp4": [
            Scene(4.0, (Placement(obama, 340, 60, 10),)),
            Scene(3.0),
            Scene(5.0, (Placement(obama, 290, 300, 40, vx=-40.0),)),
        ],
        "pair.mp4": [
            Scene(4.0, (Placement(biden, 320, 340, 20, keep_top=0.45), Placement(obama2, 320, 40, 20))),
            Scene(3.0, (Placement(biden2, 300, 40, 30),)),
            Scene(3.0, (Placement(obama2, 330, 360, 15, vy=-5.0),)),
        ],
        "nobody.mp4": [Scene(3.0), Scene(3.0)],
    }


def compose_archive(folder: str | Path) -> dict[str, FaceVideo]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {name: compose_faces(folder / name, scenes) for name, scenes in archive_scenes().items()}
