"""Synthetic media whose content and timing are known exactly, for tests and benchmarks.

Video comes from ffmpeg lavfi sources (solid colours and test patterns) joined with hard cuts on frame
boundaries; speech comes from espeak-ng, mixed with numpy into silence at sample-exact offsets. Every
`make_*` function returns the ground truth (cut times, shot spans, utterance spans) alongside the file.
"""

from __future__ import annotations

import functools
import json
import math
import random
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import ImageColor

from mmsearch.errors import MediaError

# Rate the speech track is mixed at: whisper's native rate, so transcription needs no resampling.
SAMPLE_RATE = 16000
# lavfi generators accepted as a Shot source; each takes `s=` (size) and `r=` (rate) options.
PATTERNS: tuple[str, ...] = (
    "testsrc", "testsrc2", "smptebars", "smptehdbars", "pal75bars", "pal100bars",
    "rgbtestsrc", "yuvtestsrc", "mandelbrot", "life", "cellauto", "gradients",
)  # fmt: skip
# These fill themselves at random unless seeded; a fixed seed makes the same call render the same pixels.
_SEEDED_PATTERNS = frozenset({"life", "cellauto", "gradients"})
# |int16 sample| at or below this (about -54 dBFS) is silence when trimming espeak's lead-in and tail.
SILENCE_LEVEL = 64
# Silence kept after the last utterance when make_audio picks the duration itself.
TAIL_SECONDS = 0.5
_AUDIO_CODECS: dict[str, tuple[str, ...]] = {
    ".wav": ("-c:a", "pcm_s16le"),
    ".mp3": ("-c:a", "libmp3lame", "-q:a", "4"),
    ".m4a": ("-c:a", "aac", "-b:a", "64k"),
    ".flac": ("-c:a", "flac"),
}


def source_rgb(source: str) -> tuple[int, int, int] | None:
    """RGB of a solid-colour source, or None for a lavfi pattern; ValueError if it is neither."""
    if source in PATTERNS:
        return None
    try:
        rgb = ImageColor.getrgb(source.replace("0x", "#", 1) if source.startswith("0x") else source)
    except ValueError as e:
        raise ValueError(
            f"unknown shot source {source!r}: use a colour name, #rrggbb, or one of {', '.join(PATTERNS)}"
        ) from e
    return (rgb[0], rgb[1], rgb[2])


@dataclass(frozen=True)
class Shot:
    """One shot: a solid colour (name or #rrggbb) or a lavfi pattern name, shown for `duration` seconds."""

    source: str
    duration: float

    def __post_init__(self) -> None:
        source_rgb(self.source)
        if not self.duration > 0:
            raise ValueError(f"shot duration must be positive, got {self.duration}")


@dataclass(frozen=True)
class Utterance:
    """A sentence spoken by espeak-ng starting at `start` seconds."""

    text: str
    start: float
    voice: str = "en-us"
    rate_wpm: int = 150

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("utterance text is empty")
        if self.start < 0:
            raise ValueError(f"utterance start must be >= 0, got {self.start}")


class ShotSpan(NamedTuple):
    start: float
    end: float
    source: str


class SpeechSpan(NamedTuple):
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class VideoTruth:
    """What a generated video contains; `cuts` are the start times of every shot after the first."""

    path: Path
    duration: float
    cuts: tuple[float, ...]
    shots: tuple[ShotSpan, ...]
    utterances: tuple[SpeechSpan, ...]
    fps: int = 25
    size: tuple[int, int] = (320, 240)
    has_audio: bool = True


@dataclass(frozen=True)
class AudioTruth:
    path: Path
    duration: float
    utterances: tuple[SpeechSpan, ...]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MediaError(f"{name} is not on PATH", hint="install it, e.g. `apt-get install ffmpeg espeak-ng`")
    return found


def _run(cmd: Sequence[str], stdin: bytes | None = None) -> str:
    """Run a tool and return its stdout; a failure becomes MediaError carrying the tool's stderr."""
    try:
        return subprocess.run(list(cmd), input=stdin, check=True, capture_output=True).stdout.decode()
    except subprocess.CalledProcessError as e:
        stderr = e.stderr.decode(errors="replace").strip()[-2000:]
        raise MediaError(f"{Path(cmd[0]).name} failed (exit {e.returncode}): {stderr}") from e


def run_ffmpeg(*args: str) -> None:
    _run([_tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args])


def _read_wav(path: Path) -> tuple[int, np.ndarray]:
    """Sample rate and first-channel int16 samples of a 16-bit PCM wav (espeak-ng's and ours)."""
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return w.getframerate(), data.reshape(-1, w.getnchannels())[:, 0]


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


def speak(text: str, path: str | Path, voice: str = "en-us", rate_wpm: int = 150) -> float:
    """Write `text` spoken by espeak-ng to a wav at `path`; returns the seconds of speech.

    Leading and trailing silence is trimmed so the wav's length is the utterance's exact span.
    """
    path = Path(path)
    # Text goes in on stdin so a sentence starting with "-" is never read as an option.
    _run([_tool("espeak-ng"), "-v", voice, "-s", str(rate_wpm), "-w", str(path), "--stdin"], text.encode())
    rate, samples = _read_wav(path)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_LEVEL)
    if loud.size == 0:
        raise MediaError(f"espeak-ng produced only silence for {text!r} (voice {voice!r})")
    samples = samples[loud[0] : loud[-1] + 1]
    write_wav(path, samples, rate)
    return samples.size / rate


@functools.lru_cache(maxsize=256)
def _speech_pcm(text: str, voice: str, rate_wpm: int) -> np.ndarray:
    """Trimmed speech as float32 at SAMPLE_RATE; cached because collections size gaps before rendering."""
    with tempfile.TemporaryDirectory(prefix="mmsearch-speak-") as tmp:
        wav = Path(tmp) / "speech.wav"
        speak(text, wav, voice, rate_wpm)
        rate, samples = _read_wav(wav)
    pcm = samples.astype(np.float32) / 32768.0
    if rate != SAMPLE_RATE:
        # Linear interpolation is enough here: espeak's formant speech has little energy near Nyquist.
        n_out = round(pcm.size * SAMPLE_RATE / rate)
        pcm = np.interp(np.arange(n_out) * (rate / SAMPLE_RATE), np.arange(pcm.size), pcm).astype(np.float32)
    pcm.flags.writeable = False
    return pcm


def mix_speech(utterances: Sequence[Utterance], duration: float) -> tuple[np.ndarray, tuple[SpeechSpan, ...]]:
    """Int16 track of `duration` seconds with each utterance at its start; ValueError on overflow/overlap."""
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    track = np.zeros(round(duration * SAMPLE_RATE), dtype=np.float32)
    spans: list[SpeechSpan] = []
    for u in sorted(utterances, key=lambda u: u.start):
        pcm = _speech_pcm(u.text, u.voice, u.rate_wpm)
        at = round(u.start * SAMPLE_RATE)
        end = round(u.start + pcm.size / SAMPLE_RATE, 6)
        if spans and u.start < spans[-1].end:
            raise ValueError(f"utterance {u.text!r} at {u.start}s overlaps one ending at {spans[-1].end}s")
        if at + pcm.size > track.size:
            raise ValueError(f"utterance {u.text!r} ends at {end}s, past the media's {duration}s")
        track[at : at + pcm.size] = pcm
        spans.append(SpeechSpan(u.start, end, u.text))
    return np.round(track * 32767).astype(np.int16), tuple(spans)


def lavfi_source(source: str, size: tuple[int, int], fps: int) -> str:
    """lavfi source spec for a colour or pattern (colours as 0xRRGGBB so names mean what PIL says)."""
    spec = f"s={size[0]}x{size[1]}:r={fps}"
    rgb = source_rgb(source)
    if rgb is not None:
        return f"color=c=0x{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}:{spec}"
    return f"{source}={spec}:seed=1" if source in _SEEDED_PATTERNS else f"{source}={spec}"


def _shot_frames(shots: Sequence[Shot], fps: int) -> list[int]:
    frames = [round(s.duration * fps) for s in shots]
    for shot, n in zip(shots, frames, strict=True):
        if abs(n / fps - shot.duration) > 1e-6:
            raise ValueError(f"shot duration {shot.duration}s is not a whole number of frames at {fps} fps")
    for a, b in zip(shots, shots[1:], strict=False):
        if a.source == b.source:
            raise ValueError(f"adjacent shots both show {a.source!r}; that cut could not be seen")
    return frames


def _video_graph(shots: Sequence[Shot], frames: Sequence[int], size: tuple[int, int], fps: int) -> str:
    """filter_complex that trims each source to its frame count and concatenates them into [v]."""
    parts = [
        f"{lavfi_source(s.source, size, fps)},trim=end_frame={n},setpts=PTS-STARTPTS[s{i}]"
        for i, (s, n) in enumerate(zip(shots, frames, strict=True))
    ]
    labels = "".join(f"[s{i}]" for i in range(len(shots)))
    return ";".join([*parts, f"{labels}concat=n={len(shots)}:v=1:a=0,format=yuv420p[v]"])


def make_video(
    path: str | Path,
    shots: Sequence[Shot],
    utterances: Sequence[Utterance] = (),
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
    audio: bool = True,
) -> VideoTruth:
    """Render shots joined by hard cuts to an H.264 mp4, with an AAC speech (or silent) track if `audio`."""
    path = Path(path)
    if not shots:
        raise ValueError("a video needs at least one shot")
    if utterances and not audio:
        raise ValueError("utterances need an audio track; pass audio=True")
    if size[0] % 2 or size[1] % 2 or fps < 1:
        raise ValueError(f"need even frame sizes (yuv420p) and fps >= 1, got {size[0]}x{size[1]} at {fps}")
    frames = _shot_frames(shots, fps)
    bounds = [sum(frames[:i]) / fps for i in range(len(frames) + 1)]
    duration = bounds[-1]
    spans: tuple[SpeechSpan, ...] = ()
    with tempfile.TemporaryDirectory(prefix="mmsearch-video-") as tmp:
        inputs: list[str] = []
        outputs = ["-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
        if audio:
            track, spans = mix_speech(utterances, duration)
            wav = Path(tmp) / "track.wav"
            write_wav(wav, track, SAMPLE_RATE)
            inputs = ["-i", str(wav)]
            outputs += ["-map", "0:a", "-c:a", "aac", "-b:a", "64k"]
        graph = _video_graph(shots, frames, size, fps)
        run_ffmpeg(*inputs, "-filter_complex", graph, *outputs, "-movflags", "+faststart", str(path))
    shot_spans = tuple(ShotSpan(a, b, s.source) for a, b, s in zip(bounds, bounds[1:], shots, strict=False))
    return VideoTruth(path, duration, cuts=tuple(bounds[1:-1]), shots=shot_spans, utterances=spans,
                      fps=fps, size=size, has_audio=audio)  # fmt: skip


def make_audio(path: str | Path, utterances: Sequence[Utterance], duration: float | None = None) -> AudioTruth:
    """Speech over silence as .wav/.mp3/.m4a/.flac (by suffix); duration defaults to last end + tail."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _AUDIO_CODECS:
        raise ValueError(f"unsupported audio suffix {path.suffix!r}: use {', '.join(_AUDIO_CODECS)}")
    if duration is None:
        ends = [u.start + _speech_pcm(u.text, u.voice, u.rate_wpm).size / SAMPLE_RATE for u in utterances]
        duration = math.ceil((max(ends, default=0.0) + TAIL_SECONDS) * 10) / 10
    track, spans = mix_speech(utterances, duration)
    with tempfile.TemporaryDirectory(prefix="mmsearch-audio-") as tmp:
        wav = Path(tmp) / "track.wav"
        write_wav(wav, track, SAMPLE_RATE)
        run_ffmpeg("-i", str(wav), *_AUDIO_CODECS[suffix], str(path))
    return AudioTruth(path=path, duration=duration, utterances=spans)


def make_image(path: str | Path, source: str, size: tuple[int, int] = (320, 240)) -> Path:
    """Still .png/.jpg of a colour or the first frame of a pattern."""
    path = Path(path)
    if path.suffix.lower() not in {".png", ".jpg", ".jpeg"}:
        raise ValueError(f"unsupported image suffix {path.suffix!r}: use .png, .jpg or .jpeg")
    quality = [] if path.suffix.lower() == ".png" else ["-q:v", "2"]  # near-lossless jpeg
    # -update 1 writes exactly this file name, so a "%" in it is never read as a sequence pattern.
    # Generating in rgb24 keeps colours exact in a PNG; lavfi would otherwise pick yuv420p and round them.
    lavfi = ["-f", "lavfi", "-i", f"{lavfi_source(source, size, 25)},format=rgb24"]
    run_ffmpeg(*lavfi, "-frames:v", "1", *quality, "-update", "1", str(path))
    return path


def _frame_rate(video_path: Path) -> Fraction:
    out = _run([_tool("ffprobe"), "-v", "error", "-select_streams", "v:0",
                "-show_entries", "stream=r_frame_rate", "-of", "csv=p=0", str(video_path)])  # fmt: skip
    out = out.strip()
    try:
        rate = Fraction(out)
    except (ValueError, ZeroDivisionError) as e:  # "" when there is no video stream, "0/0" when unknown
        raise MediaError(f"{video_path}: no video frame rate (ffprobe said {out!r})") from e
    if rate <= 0:
        raise MediaError(f"{video_path}: no video frame rate (ffprobe said {out!r})")
    return rate


def extract_frame(video_path: str | Path, t: float, out_path: str | Path) -> Path:
    """Save the frame on screen at `t` seconds of a constant-frame-rate video as a PNG."""
    video_path, out_path = Path(video_path), Path(out_path)
    if out_path.suffix.lower() != ".png":
        raise ValueError(f"extracted frames are PNG; got {out_path.name!r}")
    if t < 0:
        raise ValueError(f"frame time must be >= 0, got {t}")
    # Accurate -ss yields the first frame at or after its time; snapping down to the frame grid makes
    # that the frame being displayed at t. The epsilon keeps t == k/fps from falling to frame k-1.
    rate = _frame_rate(video_path)
    start = Fraction(math.floor(t * rate + 1e-6)) / rate
    out_path.unlink(missing_ok=True)
    seek = ["-ss", f"{float(start):.6f}"]
    run_ffmpeg(*seek, "-i", str(video_path), "-frames:v", "1", "-update", "1", str(out_path))
    if not out_path.exists():
        raise MediaError(f"{video_path}: no frame at {t}s (past the end?)")
    return out_path


# Spoken in make_collection. Apart from function words no two share a word, so a keyword search for any
# content word finds exactly one sentence (tests/test_synth.py checks this).
SENTENCES: tuple[str, ...] = (
    "the red fox jumped over the fence", "a yellow submarine sank near the harbor",
    "the old farmer planted potatoes in spring", "seven purple balloons floated above the stadium",
    "the chef sliced fresh salmon with a knife", "a tiny kitten chased the ball of yarn",
    "the pilot landed the airplane during the thunderstorm",
    "grandmother baked cinnamon cookies for breakfast", "the orchestra played a violin concerto tonight",
    "a carpenter hammered nails into the wooden roof", "the astronaut slept inside the space station",
    "children built a sandcastle on the beach", "the mechanic repaired the broken motorcycle engine",
    "a green parrot whistled a cheerful melody", "the librarian stacked dusty encyclopedias on shelves",
    "heavy snow covered the mountain village overnight", "the goalkeeper caught the penalty kick",
    "a swarm of bees buzzed around the honeycomb", "the scientist mixed chemicals in a glass beaker",
    "firefighters rescued a puppy from the burning barn", "the train arrived late at the crowded platform",
    "a dolphin leaped through the ocean waves", "the painter brushed blue clouds across the canvas",
    "my neighbor mowed his lawn on saturday", "the bakery sells warm croissants every morning",
    "a giant tortoise crawled slowly across the desert",
    "the detective examined fingerprints on the doorknob",
    "students solved difficult algebra equations in class", "the gardener trimmed roses along the hedge",
    "a lighthouse guided fishing boats at midnight", "the dentist extracted a crooked molar",
    "an elephant sprayed water with its trunk", "the tractor plowed muddy fields before harvest",
    "a skier raced down the icy slope", "the bride dressed in a silk gown with pearls",
    "the volcano erupted and lava poured downhill", "a squirrel hid acorns beneath the oak",
    "the plumber fixed a leaking kitchen faucet", "the marathon runner drank lemonade at the finish",
    "a cowboy roped the wild horse in the canyon", "the jeweler polished a sparkling diamond ring",
    "the toddler spilled orange juice on the carpet", "an owl hooted softly in the dark forest",
    "the senator gave a speech about taxes", "the kangaroo hopped through the australian outback",
    "the photographer captured a rainbow over the waterfall", "a snowman melted quickly under the sunshine",
    "the programmer debugged the python compiler", "the shepherd counted sheep in the meadow",
    "a magician pulled a rabbit from his hat", "the waiter served champagne in tall flutes",
    "the surfer balanced on an enormous surfboard", "a spider spun a delicate web in the attic",
    "the king wore a golden crown at the coronation", "the nurse bandaged a wounded soldier",
    "a hurricane flooded the coastal highway", "the blacksmith forged an iron sword",
    "the zookeeper fed bananas to hungry monkeys", "a zeppelin drifted above the vineyard",
    "the archaeologist uncovered ancient pottery in egypt", "the drummer pounded loud rhythms on stage",
    "a penguin waddled across the frozen glacier", "the tailor stitched buttons onto a jacket",
    "the cyclist pedaled uphill in the pouring rain", "the astronomer observed saturn through a telescope",
    "a lumberjack chopped firewood for the winter",
)  # fmt: skip
# Words shared between SENTENCES that carry no meaning for search.
FUNCTION_WORDS = frozenset({
    "a", "an", "the", "of", "over", "on", "in", "at", "to", "with", "for", "from", "into", "onto", "across",
    "through", "above", "beneath", "under", "along", "around", "during", "every", "and", "his", "its", "my",
    "about", "before", "down", "inside", "near",
})  # fmt: skip
# Shot sources for collections: colours far apart in RGB, and patterns that look unlike each other.
COLLECTION_SOURCES: tuple[str, ...] = (
    "red", "lime", "blue", "yellow", "magenta", "cyan", "orange", "purple", "white", "black",
    "testsrc", "testsrc2", "smptebars", "rgbtestsrc", "mandelbrot", "life", "cellauto", "gradients",
)  # fmt: skip
# Layout of collection videos, in seconds: shots last at least MIN_SHOT, speech starts after a gap drawn
# from SPEECH_GAPS, and the video runs at least TAIL_SECONDS past the last word.
MIN_SHOT = 1.0
SPEECH_GAPS = (0.3, 0.5, 0.8, 1.2)
_COLLECTION_VOICE, _COLLECTION_WPM = "en-us", 150


def _deal_sentences(rng: random.Random, n_videos: int, per_video: int) -> list[list[str]]:
    """Sentences per video, each used once per collection until the list runs out, never twice per video."""
    deck: list[str] = []
    dealt: list[list[str]] = []
    for _ in range(n_videos):
        chosen: list[str] = []
        for _ in range(per_video):
            if not deck:
                fresh = [s for s in SENTENCES if s not in chosen]
                rng.shuffle(fresh)
                deck = fresh
            chosen.append(deck.pop())
        dealt.append(chosen)
    return dealt


def _plan_speech(rng: random.Random, sentences: Sequence[str]) -> tuple[list[Utterance], float]:
    """Utterances laid end to end with random gaps; returns them and the time the last one ends."""
    utterances: list[Utterance] = []
    t = 0.0
    for text in sentences:
        t = round(t + rng.choice(SPEECH_GAPS), 6)
        utterances.append(Utterance(text, t, _COLLECTION_VOICE, _COLLECTION_WPM))
        t += _speech_pcm(text, _COLLECTION_VOICE, _COLLECTION_WPM).size / SAMPLE_RATE
    return utterances, t


def _plan_shots(rng: random.Random, min_duration: float, fps: int) -> list[Shot]:
    """3-5 shots of distinct sources, each at least MIN_SHOT long, together at least `min_duration`."""
    n = rng.randint(3, 5)
    sources = rng.sample(COLLECTION_SOURCES, n)
    min_frames = round(MIN_SHOT * fps)
    total = max(n * min_frames + rng.randint(0, 2 * fps), math.ceil(min_duration * fps))
    # n-1 sorted draws from the spare frames split them into n random extensions of the minimum.
    marks = sorted(rng.randint(0, total - n * min_frames) for _ in range(n - 1))
    extra = [b - a for a, b in zip([0, *marks], [*marks, total - n * min_frames], strict=True)]
    return [Shot(src, (min_frames + e) / fps) for src, e in zip(sources, extra, strict=True)]


def make_collection(
    out_dir: str | Path,
    n_videos: int,
    sentences_per_video: int,
    seed: int,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
) -> list[VideoTruth]:
    """A deterministic set of videos `video_000.mp4`, ... with known cuts and spoken sentences."""
    if n_videos < 1 or not 0 <= sentences_per_video <= len(SENTENCES):
        raise ValueError(f"need n_videos >= 1 and 0 <= sentences_per_video <= {len(SENTENCES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    truths = []
    for i, sentences in enumerate(_deal_sentences(rng, n_videos, sentences_per_video)):
        utterances, speech_end = _plan_speech(rng, sentences)
        shots = _plan_shots(rng, speech_end + TAIL_SECONDS, fps)
        truths.append(make_video(out_dir / f"video_{i:03d}.mp4", shots, utterances, size=size, fps=fps))
    return truths


def _truth_to_json(truth: VideoTruth, base: Path) -> dict[str, object]:
    path = truth.path.resolve()
    return {
        "path": str(path.relative_to(base)) if path.is_relative_to(base) else str(path),
        "duration": truth.duration,
        "fps": truth.fps,
        "size": list(truth.size),
        "has_audio": truth.has_audio,
        "cuts": list(truth.cuts),
        "shots": [s._asdict() for s in truth.shots],
        "utterances": [u._asdict() for u in truth.utterances],
    }


def write_truth_json(truths: Sequence[VideoTruth], path: str | Path) -> Path:
    """Save ground truth as JSON; media paths under the JSON's folder are stored relative to it."""
    path = Path(path)
    base = path.resolve().parent
    doc = {"version": 1, "videos": [_truth_to_json(t, base) for t in truths]}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def load_truth_json(path: str | Path) -> list[VideoTruth]:
    """Read what write_truth_json saved, resolving relative media paths against the JSON's folder."""
    path = Path(path)
    doc = json.loads(path.read_text())
    return [
        VideoTruth(
            path=path.resolve().parent / v["path"],
            duration=v["duration"],
            cuts=tuple(v["cuts"]),
            shots=tuple(ShotSpan(s["start"], s["end"], s["source"]) for s in v["shots"]),
            utterances=tuple(SpeechSpan(u["start"], u["end"], u["text"]) for u in v["utterances"]),
            fps=v["fps"],
            size=(v["size"][0], v["size"][1]),
            has_audio=v["has_audio"],
        )
        for v in doc["videos"]
    ]
