"""Media whose timestamps do not start at zero, with the times (on the container's timeline) of what they hold.

Each file is made from one base video (shots by hard cuts, espeak-ng speech) remuxed or muxed by ffmpeg so that
its audio starts late (`-itsoffset`), all its timestamps start late (`-output_ts_offset`), an edit list cuts its
start (`-ss` with stream copy), or its frame rate changes mid-file (VFR). `TimelineTruth` gives the times a
player shows: speech starts and shot cuts as the container presents them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .media import SAMPLE_RATE, Shot, Utterance, make_video, mix_speech, run_ffmpeg, write_wav

SENTENCES = (
    "Seven green apples are sitting on the kitchen table.",
    "The old lighthouse keeper painted the door bright yellow.",
)


@dataclass(frozen=True)
class TimelineTruth:
    path: Path
    how: str  # what makes its timeline unusual
    speech: tuple[tuple[float, str], ...]  # (start on the container's timeline, sentence)
    cuts: tuple[float, ...]  # shot changes on the container's timeline
    first_frame: float  # the first frame's presentation time


def _base(root: Path, name: str = "base.mp4") -> Path:
    """12 s: red 0-5 s, blue 5-12 s; sentence 0 at 1.0 s, sentence 1 at 7.0 s (on a zero-based timeline)."""
    shots = [Shot("red", 5.0), Shot("blue", 7.0)]
    utterances = [Utterance(SENTENCES[0], 1.0), Utterance(SENTENCES[1], 7.0)]
    return make_video(root / name, shots, utterances, size=(160, 120)).path


def make_itsoffset(root: Path, offset: float = 2.0) -> TimelineTruth:
    """Video from 0 s, its audio stream starting at `offset` (ffmpeg -itsoffset): speech is heard later."""
    path = root / "itsoffset.mp4"
    with tempfile.TemporaryDirectory(prefix="mmsearch-timeline-") as tmp:
        track, _ = mix_speech([Utterance(SENTENCES[0], 0.5)], 4.0)
        wav = Path(tmp) / "speech.wav"
        write_wav(wav, track, SAMPLE_RATE)
        video = ["-f", "lavfi", "-i", "color=c=red:s=160x120:r=25:d=4,format=yuv420p"]
        run_ffmpeg(*video, "-itsoffset", str(offset), "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast",
                "-c:a", "aac", "-b:a", "64k", str(path))  # fmt: skip
    return TimelineTruth(path, f"audio starts at {offset} s (-itsoffset)", ((offset + 0.5, SENTENCES[0]),), (), 0.0)


def make_ts_offset(root: Path, suffix: str = ".mkv", offset: float = 1.4) -> TimelineTruth:
    """Every timestamp shifted by `offset` (ffmpeg -output_ts_offset, stream copy)."""
    base = _base(root, f"base-ots{suffix.replace('.', '-')}.mp4")
    path = root / f"ts-offset{suffix}"
    run_ffmpeg("-i", str(base), "-c", "copy", "-output_ts_offset", str(offset), str(path))
    base.unlink()
    speech = ((1.0 + offset, SENTENCES[0]), (7.0 + offset, SENTENCES[1]))
    return TimelineTruth(path, f"timestamps start at {offset} s (-output_ts_offset)", speech, (5.0 + offset,), offset)


def make_edit_list(root: Path, cut: float = 0.6) -> TimelineTruth:
    """An mp4 whose edit list hides its first `cut` seconds (-ss before -i with stream copy keeps the frames from
    the keyframe before the cut and writes an edit list that starts the presentation at the cut)."""
    base = _base(root, "base-edit.mp4")
    path = root / "edit-list.mp4"
    run_ffmpeg("-ss", str(cut), "-i", str(base), "-c", "copy", str(path))
    base.unlink()
    speech = ((1.0 - cut, SENTENCES[0]), (7.0 - cut, SENTENCES[1]))
    return TimelineTruth(path, f"edit list skipping {cut} s", speech, (5.0 - cut,), 0.0)


def make_vfr(root: Path) -> TimelineTruth:
    """Variable frame rate in Matroska (PCM audio: no AAC priming to shift it): red at 5 fps for 5 s, then blue at 30 fps for 7 s, speech as in the base."""
    path = root / "vfr.mkv"
    with tempfile.TemporaryDirectory(prefix="mmsearch-timeline-") as tmp:
        track, _ = mix_speech([Utterance(SENTENCES[0], 1.0), Utterance(SENTENCES[1], 7.0)], 12.0)
        wav = Path(tmp) / "speech.wav"
        write_wav(wav, track, SAMPLE_RATE)
        graph = (
            "color=c=red:s=160x120:r=5:d=5[a];color=c=blue:s=160x120:r=30:d=7[b];"
            "[a][b]concat=n=2:v=1:a=0,format=yuv420p[v]"
        )
        run_ffmpeg("-filter_complex", graph, "-i", str(wav), "-map", "[v]", "-map", "0:a", "-fps_mode", "passthrough",
                "-c:v", "libx264", "-bf", "0", "-preset", "ultrafast", "-c:a", "pcm_s16le", str(path))  # fmt: skip
    speech = ((1.0, SENTENCES[0]), (7.0, SENTENCES[1]))
    return TimelineTruth(path, "variable frame rate (5 then 30 fps)", speech, (5.0,), 0.0)


def make_timeline_set(root: Path) -> list[TimelineTruth]:
    """One file of each kind, in `root`."""
    root.mkdir(parents=True, exist_ok=True)
    return [
        make_itsoffset(root),
        make_ts_offset(root, ".mkv"),
        make_ts_offset(root, ".mp4"),
        make_edit_list(root),
        make_vfr(root),
    ]


def nearest(times: Sequence[float], t: float) -> float:
    return min(times, key=lambda x: abs(x - t))
