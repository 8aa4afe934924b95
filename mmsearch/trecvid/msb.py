"""Master shot boundary reference (msb): which shot of which video a moment belongs to.

TRECVID judges shots, not seconds, so every hit must be mapped to the official shot ids `shot<video>_<n>`
(n counts from 1 in time order). Two on-disk formats are read:

(a) mmsearch's own, one shot per line, whitespace or tab separated; `#` lines are comments:

        # shotID        start_seconds  end_seconds
        shot00017_1     0.0            4.96
        shot00017_2     5.0            12.04

    The video id is the part between `shot` and the last `_`. Times are seconds or `HH:MM:SS.mmm`.
    `write_msb` writes this format.

(b) the V3C per-video files NIST distributes (`msb/<video>.tsv`): a tab-separated header
    `startframe starttime endframe endtime` (any letter case), then one row per shot in order; row k is
    `shot<video>_k`. Times are seconds (`HH:MM:SS.mmm` is accepted too). `load_msb` takes the directory or
    one file.

(c) IACC-style frame-numbered references (`msb/<video>.msb`, NIST's IACC.3 notes: "begin and end frame
    numbers of master video shots"): one `startframe endframe` pair per line, whitespace or comma
    separated, frames from 0; row k is `shot<video>_k`. Times are frame / fps, so reading them needs the
    video's frame rate: `fps` is a number, or a function of the video id (e.g. probing the indexed file).

Coverage rule. V3C end times are the time of a shot's last frame, so there is a gap of about one frame
before the next shot starts. A shot therefore owns [its start, the next shot's start); the last shot owns
[start, end].
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from mmsearch.errors import BadInput, UsageError
from mmsearch.trecvid._textio import data_lines, read_text

_SHOT_ID = re.compile(r"^shot(?P<video>.+)_(?P<n>\d+)$")
_V3C_COLUMNS = ("starttime", "endtime")
# Frames per second of every video, or a lookup by video id.
FrameRate = float | Callable[[str], float | None]


@dataclass(frozen=True)
class Shot:
    shot_id: str
    video: str
    start: float
    end: float


@dataclass(frozen=True)
class MasterShotReference:
    """Shots per video, sorted by start time."""

    videos: Mapping[str, tuple[Shot, ...]]
    _starts: dict[str, list[float]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = {video: tuple(sorted(shots, key=lambda s: s.start)) for video, shots in self.videos.items()}
        object.__setattr__(self, "videos", ordered)
        object.__setattr__(self, "_starts", {v: [s.start for s in shots] for v, shots in ordered.items()})

    def __len__(self) -> int:
        return sum(len(shots) for shots in self.videos.values())

    def shots(self, video: str) -> tuple[Shot, ...]:
        return self.videos.get(video, ())

    def shot_for(self, video: str, t: float) -> Shot | None:
        """The shot showing time `t` (seconds) of `video`, or None outside the reference."""
        shots = self.videos.get(video)
        if not shots:
            return None
        i = bisect_right(self._starts[video], t) - 1
        if i < 0 or (i == len(shots) - 1 and t > shots[i].end):
            return None
        return shots[i]

    def overlapping(self, video: str, start: float, end: float | None) -> tuple[Shot, ...]:
        """Every shot whose coverage meets [start, end); a point (end None or <= start) gives `shot_for`."""
        if end is None or end <= start:
            shot = self.shot_for(video, start)
            return (shot,) if shot else ()
        shots = self.videos.get(video)
        if not shots:
            return ()
        starts = self._starts[video]
        first = max(bisect_right(starts, start) - 1, 0)
        result = shots[first : bisect_left(starts, end)]
        if result and result[-1] is shots[-1] and start > shots[-1].end:
            result = result[:-1]
        return result


def video_id_for_path(path: str | Path) -> str:
    """Video id of a media file as the msb names it: its name without extension (`/x/00017.mp4` → `00017`)."""
    return Path(path).stem


def load_msb(path: str | Path, fps: FrameRate | None = None) -> MasterShotReference:
    """Read an msb: a format (a) file, a V3C `<video>.tsv` file or directory of them, or frame-numbered
    `<video>.msb` / `.csv` files (format (c), which needs `fps`)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".tsv", ".msb", ".csv"))
        if not files:
            raise BadInput(f"msb directory {p} holds no <video>.tsv / <video>.msb files")
        # In a directory, `.tsv` files are V3C's per-video references, header and all.
        shots = [shot for f in files for shot in _read_file(f, read_text(f, "msb file"), fps, f.suffix == ".tsv")]
    else:
        shots = _read_file(p, read_text(p, "msb file"), fps)
    return _build(shots, p)


def _read_file(path: Path, text: str, fps: FrameRate | None, v3c: bool = False) -> list[Shot]:
    if v3c or _has_v3c_header(text):
        return _read_v3c_file(path, text)
    if _is_frame_pairs(text):
        return _read_frame_pairs(path, text, _frame_rate(fps, video_id_for_path(path), path))
    return _read_shot_lines(path, text)


def _is_frame_pairs(text: str) -> bool:
    rows = [line.replace(",", " ").split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return bool(rows) and all(len(r) == 2 and r[0].isdigit() and r[1].isdigit() for r in rows)


def _frame_rate(fps: FrameRate | None, video: str, path: Path) -> float:
    rate = fps(video) if callable(fps) else fps
    if rate is None or not rate > 0:
        raise BadInput(
            f"msb {path} gives frame numbers, and the frame rate of video {video} is unknown",
            hint="index the video under the same name, or pass --fps",
        )
    return float(rate)


def _read_frame_pairs(path: Path, text: str, fps: float) -> list[Shot]:
    video = video_id_for_path(path)
    shots = []
    for k, (number, fields) in enumerate(data_lines(text.replace(",", " ").splitlines()), start=1):
        first, last = int(fields[0]), int(fields[1])
        if last < first:
            raise BadInput(f"{path}:{number}: shot ends (frame {last}) before it starts (frame {first})")
        # A shot's end is the time of its last frame, as V3C end times are.
        shots.append(Shot(f"shot{video}_{k}", video, first / fps, last / fps))
    return shots


def probe_frame_rate(path: str | Path) -> float | None:
    """Average frame rate of a video file's first video stream (PyAV), None if it has none or cannot be read."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = next(iter(container.streams.video), None)
            rate = stream.average_rate or stream.guessed_rate if stream is not None else None
    except (av.error.FFmpegError, OSError):
        return None
    return float(rate) if rate else None


def write_msb(msb: MasterShotReference, path: str | Path) -> None:
    """Write format (a); `repr` keeps every float exact so load_msb(write_msb(m)) == m."""
    lines = ["# shotID\tstart_seconds\tend_seconds"]
    for video in sorted(msb.videos):
        lines.extend(f"{s.shot_id}\t{s.start!r}\t{s.end!r}" for s in msb.videos[video])
    try:
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write msb file {path}: {e}") from e


def parse_time(token: str, where: str) -> float:
    """Seconds from `12.5`, `MM:SS.mmm` or `HH:MM:SS.mmm`."""
    # Decimal so that `00:01:59.960` gives exactly the float 119.96, as `119.96` would.
    try:
        parts = [Decimal(x) for x in token.split(":")]
    except InvalidOperation:
        raise BadInput(f"{where}: not a time: {token!r}") from None
    if len(parts) > 3 or any(not x.is_finite() or x < 0 for x in parts):
        raise BadInput(f"{where}: not a time: {token!r}")
    seconds = Decimal(0)
    for part in parts:
        seconds = seconds * 60 + part
    return float(seconds)


def _has_v3c_header(text: str) -> bool:
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return all(col in line.lower().split() for col in _V3C_COLUMNS)
    return False


def _read_shot_lines(path: Path, text: str) -> list[Shot]:
    shots = []
    for number, fields in data_lines(text.splitlines()):
        where = f"{path}:{number}"
        if len(fields) != 3:
            raise BadInput(f"{where}: expected 'shotID start end', got {len(fields)} fields")
        match = _SHOT_ID.match(fields[0])
        if match is None:
            raise BadInput(f"{where}: shot id {fields[0]!r} is not of the form shot<video>_<n>")
        shots.append(_shot(fields[0], match["video"], fields[1], fields[2], where))
    return shots


def _read_v3c_file(path: Path, text: str) -> list[Shot]:
    """One V3C `<video>.tsv`: header row, then shot k on data row k."""
    video = video_id_for_path(path)
    rows = list(data_lines(text.splitlines()))
    if not rows or not all(col in [c.lower() for c in rows[0][1]] for col in _V3C_COLUMNS):
        raise BadInput(f"{path}: expected a header with columns {' '.join(_V3C_COLUMNS)}")
    header = [c.lower() for c in rows[0][1]]
    i_start, i_end = header.index("starttime"), header.index("endtime")
    shots = []
    for k, (number, fields) in enumerate(rows[1:], start=1):
        where = f"{path}:{number}"
        if len(fields) != len(header):
            raise BadInput(f"{where}: expected {len(header)} columns as in the header, got {len(fields)}")
        shots.append(_shot(f"shot{video}_{k}", video, fields[i_start], fields[i_end], where))
    return shots


def _shot(shot_id: str, video: str, start: str, end: str, where: str) -> Shot:
    shot = Shot(shot_id, video, parse_time(start, where), parse_time(end, where))
    if shot.end < shot.start:
        raise BadInput(f"{where}: shot {shot_id} ends ({shot.end}) before it starts ({shot.start})")
    return shot


def _build(shots: Iterable[Shot], source: Path) -> MasterShotReference:
    videos: dict[str, list[Shot]] = {}
    seen: set[str] = set()
    for shot in shots:
        if shot.shot_id in seen:
            raise BadInput(f"msb {source}: shot id {shot.shot_id} appears twice")
        seen.add(shot.shot_id)
        videos.setdefault(shot.video, []).append(shot)
    if not videos:
        raise BadInput(f"msb {source} lists no shots")
    return MasterShotReference({video: tuple(v) for video, v in videos.items()})
