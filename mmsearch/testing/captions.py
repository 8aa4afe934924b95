"""Videos with text drawn on screen at known times (ffmpeg `drawtext`), for OCR tests and benchmarks."""

from __future__ import annotations

import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import MediaError
from .media import lavfi_source, run_ffmpeg

# Fonts tried in order; DejaVu ships with most Linux distributions (fonts-dejavu-core).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)


@dataclass(frozen=True)
class Caption:
    """Text on screen during [start, end): font size in pixels, position as fractions of the frame, a box behind it
    (a colour, or None for plain text on the background)."""

    text: str
    start: float
    end: float
    size: int = 28
    x: float = 0.1
    y: float = 0.4
    color: str = "white"
    box: str | None = "black@0.6"


def find_font() -> Path:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    raise MediaError("no TrueType font for drawtext", hint="apt-get install fonts-dejavu-core")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'").replace("%", "\\%")


def _drawtext(caption: Caption, font: Path) -> str:
    box = f":box=1:boxcolor={caption.box}:boxborderw=8" if caption.box else ""
    return (
        f"drawtext=fontfile={font}:text='{_escape(caption.text)}':fontsize={caption.size}:fontcolor={caption.color}"
        f":x=w*{caption.x}:y=h*{caption.y}{box}:enable='between(t,{caption.start},{caption.end - 1e-3})'"
    )


def make_captioned_video(
    path: str | Path,
    captions: Sequence[Caption],
    duration: float,
    background: str = "#203060",
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
) -> Path:
    """An H.264 mp4 (no audio) of `background` (a colour or lavfi pattern) with the captions drawn on it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("ffmpeg") is None:
        raise MediaError("ffmpeg is not on PATH")
    font = find_font()
    filters = ",".join(["format=yuv420p", *(_drawtext(c, font) for c in captions)])
    source = f"{lavfi_source(background, size, fps)},trim=duration={duration}"
    run_ffmpeg("-f", "lavfi", "-i", source, "-vf", filters, "-c:v", "libx264", "-preset", "ultrafast", str(path))
    return path


# Words for benchmark captions: distinct enough that a query names one caption.
CAPTION_WORDS = [
    "platform",
    "departures",
    "gate",
    "harbor",
    "museum",
    "library",
    "station",
    "airport",
    "bakery",
    "garden",
    "theatre",
    "stadium",
    "exit",
    "tickets",
    "arrivals",
    "pharmacy",
    "bridge",
    "market",
    "parking",
    "hotel",
    "tunnel",
    "ferry",
    "canal",
    "castle",
    "summit",
    "lecture",
    "results",
    "budget",
    "weather",
    "traffic",
    "election",
    "football",
    "concert",
    "festival",
    "auction",
]
# Still backgrounds (a moving pattern would make every sampled frame "changed" and multiply the OCR cost).
BACKGROUNDS = ("#203060", "#f0f0e0", "smptebars", "#406020", "rgbtestsrc", "#000000")


def random_captions(rng: random.Random, count: int, duration_each: float = 4.0) -> list[Caption]:
    """Captions one after another, of varied size, position and background box; each is two or three words."""
    out = []
    for i in range(count):
        words = " ".join(w.upper() if rng.random() < 0.5 else w.title() for w in rng.sample(CAPTION_WORDS, 3))
        box = rng.choice([None, "black@0.7", "white@0.8", "blue@0.6"])
        color = "black" if box and box.startswith("white") else rng.choice(["white", "yellow"])
        start = i * duration_each
        out.append(
            Caption(
                words,
                start,
                start + duration_each,
                rng.choice([16, 22, 28, 36]),
                round(rng.uniform(0.02, 0.12), 2),  # the widest caption still fits
                round(rng.uniform(0.05, 0.8), 2),
                color,
                box,
            )  # fmt: skip
        )
    return out
