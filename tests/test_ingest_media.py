"""Issue 11's table of real-world media, one test per row, on media made with ffmpeg (and espeak-ng)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import mmsearch
from mmsearch.cli.app import app
from mmsearch.index.check import check_index
from mmsearch.ingest.decode import iter_audio, iter_frames, load_image
from mmsearch.ingest.discover import probe
from mmsearch.testing.media import Shot, Utterance, make_audio, make_video
from mmsearch.types import MediaKind

REPO = Path(mmsearch.__file__).resolve().parent.parent
runner = CliRunner()


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def spawn(args: list[str], cwd: Path | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "mmsearch", *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def index_json(index_dir: Path) -> dict[str, object]:
    code, out, _ = cli("info", "--index", str(index_dir), "--json")
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def test_non_utf8_name_is_indexed_like_any_other(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    video = make_video(tmp_path / "v.mp4", [Shot("red", 1), Shot("blue", 1)], audio=False, size=(64, 48))
    name = os.fsencode(media) + b"/caf\xe9.mp4"  # Latin-1 é: not valid UTF-8
    shutil.copy(video.path, name)
    for shots in ("adaptive", "transnetv2"):
        index_dir = tmp_path / f"idx-{shots}"
        proc = spawn(["index", str(media), "--index", str(index_dir), "--model", "test:hash", "--no-asr",
                      "--shots", shots, "--json"])  # fmt: skip
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode(errors="replace")
        summary = json.loads(out)
        assert summary["new_files"] == 1 and summary["failed"] == []
    from mmsearch.index.catalog import Catalog

    catalog = Catalog.open(tmp_path / "idx-adaptive" / "catalog.sqlite", readonly=True)
    try:
        (record,) = catalog.files()
        assert record.raw_path == name
        assert [(round(a, 1), round(b, 1)) for a, b in catalog.shots_of([record.id])[record.id]] == [(0, 1), (1, 2)]
    finally:
        catalog.close()


def test_cover_art_audio_is_audio_and_its_speech_is_indexed(tmp_path: Path, asr_model_dir: Path) -> None:
    speech = make_audio(tmp_path / "speech.wav", [Utterance("the quick brown fox jumps", 0.5)])
    ffmpeg("-f", "lavfi", "-i", "color=c=red:size=200x200", "-frames:v", "1", str(tmp_path / "cover.png"))
    song = tmp_path / "media" / "song.mp3"
    song.parent.mkdir()
    ffmpeg("-i", str(speech.path), "-i", str(tmp_path / "cover.png"), "-map", "0:a", "-map", "1:v",
           "-c:a", "libmp3lame", "-c:v", "mjpeg", "-frames:v", "1", "-id3v2_version", "3",
           "-disposition:v", "attached_pic", str(song))  # fmt: skip
    assert probe(song).kind is MediaKind.AUDIO
    code, out, err = cli("index", str(song.parent), "--index", str(tmp_path / "i"), "--model", "test:hash",
                         "--asr-model", str(asr_model_dir), "--json")  # fmt: skip
    assert code == 0, err
    info = index_json(tmp_path / "i")
    assert info["segments"]["speech"] >= 1  # type: ignore[index]


def test_rotated_phone_video_gives_upright_frames_with_true_aspect(tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", [Shot("testsrc", 2)], audio=False, size=(640, 360))
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(plain.path), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    media = probe(rotated)
    assert media.rotation in (90, 270) and media.upright_size == (360, 640)
    frame = next(iter_frames(media, 1.0)).frames[0]
    assert frame.shape == (448, 252, 3)  # portrait, 9:16, not squashed into 16:9
    # ffmpeg's own autorotation is the reference picture.
    ffmpeg("-i", str(rotated), "-frames:v", "1", "-s", "252x448", str(tmp_path / "ref.png"))
    reference = np.asarray(Image.open(tmp_path / "ref.png").convert("RGB"), dtype=np.int16)
    assert np.abs(reference - frame.astype(np.int16)).mean() < 8


def test_vp9_realtime_gets_a_frame_for_every_sample_time(tmp_path: Path) -> None:
    path = tmp_path / "rt.webm"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "10", "-c:v", "libvpx-vp9",
           "-deadline", "realtime", "-cpu-used", "8", str(path))  # fmt: skip
    times = np.concatenate([b.times for b in iter_frames(probe(path), 1.0)])
    assert np.allclose(times, np.arange(10), atol=0.05)


def test_truncated_faststart_mp4_keeps_what_decodes_and_says_so(tmp_path: Path) -> None:
    full = make_video(tmp_path / "full.mp4", [Shot("testsrc", 20)], [Utterance("hello there", 1.0)], size=(160, 120))
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    cut = media_dir / "cut.mp4"
    data = full.path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    media = probe(cut)
    batches = list(iter_frames(media, 1.0))
    times = np.concatenate([b.times for b in batches])
    assert 5 <= len(times) < 20 and batches[-1].truncated_at is not None
    assert sum(c.duration for c in iter_audio(media)) > 5  # the audio before the cut is kept too
    code, out, err = cli("index", str(media_dir), "--index", str(tmp_path / "i"), "--model", "test:hash", "--no-asr")
    assert code == 0, err
    lines = [line for line in err.splitlines() if "truncated" in line]
    assert len(lines) == 1 and "cut.mp4" in lines[0]
    assert index_json(tmp_path / "i")["segments"]["frame"] == len(times)  # type: ignore[index]


def test_16bit_grayscale_png_is_indexed_as_it_looks(tmp_path: Path) -> None:
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    path = tmp_path / "gray16.png"
    Image.fromarray(ramp).save(path)  # Pillow writes a 16-bit grayscale PNG ("I;16")
    assert Image.open(path).mode.startswith("I")
    pixels = load_image(path)
    expected = ramp / 257.0
    assert abs(float(pixels[..., 0].mean()) - float(expected.mean())) < 2
    assert pixels[0, 0, 0] < 5 and pixels[-1, -1, 0] > 250


def test_index_dot_never_reads_its_own_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMSEARCH_INDEX")
    make_video(tmp_path / "clip.mp4", [Shot("red", 1)], audio=False, size=(64, 48))
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code, out, err = cli("index", ".", "--model", "test:hash", "--no-asr", "--json")
        assert code == 0, err
        assert json.loads(out)["failed"] == []
    assert (tmp_path / "indexes" / "default" / "catalog.sqlite").is_file()
    assert index_json(tmp_path / "indexes" / "default")["files"] == 1


def test_index_naming_a_regular_file_is_one_line_exit_2(tmp_path: Path) -> None:
    target = tmp_path / "notadir"
    target.write_text("x")
    code, out, err = cli("index", str(tmp_path), "--index", str(target), "--model", "test:hash")
    assert code == 2 and "is a file, not a directory" in err and "Traceback" not in err + out


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_device_gpu_without_gpu_says_so(tmp_path: Path) -> None:
    code, _, err = cli(
        "index", str(tmp_path), "--index", str(tmp_path / "i"), "--model", "test:hash", "--device", "gpu"
    )
    assert code == 2 and "no GPU" in err and "weights" not in err
    assert not (tmp_path / "i").exists()


def test_typo_in_media_path_creates_nothing_exit_2(tmp_path: Path) -> None:
    code, _, err = cli("index", str(tmp_path / "nope"), "--index", str(tmp_path / "i"), "--model", "test:hash")
    assert code == 2 and "no such file or directory" in err
    assert not (tmp_path / "i").exists()


def test_index_remembers_its_asr_model(tmp_path: Path, asr_model_dir: Path) -> None:
    (tmp_path / "a").mkdir()
    first = make_audio(tmp_path / "a" / "one.wav", [Utterance("seven purple whales", 0.3)])
    code, _, err = cli("index", str(first.path), "--index", str(tmp_path / "i"), "--model", "test:hash",
                       "--asr-model", str(asr_model_dir))  # fmt: skip
    assert code == 0, err
    second = make_audio(tmp_path / "a" / "two.wav", [Utterance("a wooden fence", 0.3)])
    code, _, err = cli("index", str(second.path), "--index", str(tmp_path / "i"))  # offline: `base` cannot load
    assert code == 0, err
    assert index_json(tmp_path / "i")["segments"]["speech"] >= 2  # type: ignore[index]


def test_random_bytes_named_mp3_are_reported_unreadable(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "noise.mp3").write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    code, _, err = cli("index", str(media), "--index", str(tmp_path / "i"), "--model", "test:hash", "--no-asr")
    assert code == 1 and "noise.mp3" in err and "not a readable media file" in err


@pytest.mark.slow
def test_long_audio_is_streamed_in_windows_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.m4a"  # 40 minutes: 154 MB as one float32 array at 16 kHz
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:sample_rate=16000:duration=2400", "-c:a", "aac", "-b:a", "16k", str(path))
    media = probe(path)
    tracemalloc.start()
    covered, longest = 0.0, 0.0
    for clip in iter_audio(media, 60.0):
        assert abs(clip.start - covered) < 1e-6  # windows tile the track
        covered += clip.duration
        longest = max(longest, clip.duration)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert abs(covered - 2400) < 1.0 and longest <= 60.0
    # The whole track would be 154 MB; a few 60 s windows (3.8 MB each) are in flight at most.
    assert peak < 30_000_000, f"peak {peak / 1e6:.0f} MB"


# Issue 11: "Ctrl-C 30 s into a 15-minute speech file ... exit 130 within a few seconds"; the bound leaves room
# for a loaded 2-core machine (measured 0.2-0.3 s on one, see README).
CTRL_C_EXIT_SECONDS = 20


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with an image and about 9 minutes of speech: Whisper tiny.en needs minutes for it here (one 30 s
    chunk took up to 45 s with beam search and temperature fallback on 2 cores)."""
    root = tmp_path_factory.mktemp("long-talk")
    one = make_audio(root / "one.wav", [Utterance("the red fox jumped over the wooden fence " * 3, 0.5)])
    media = root / "media"
    media.mkdir()
    ffmpeg("-stream_loop", "60", "-i", str(one.path), "-c:a", "aac", "-b:a", "32k", str(media / "talk.m4a"))
    Image.new("RGB", (64, 48), "red").save(media / "a.png")
    return media


@pytest.mark.slow
@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_during_transcription_exits_130_within_seconds(
    tmp_path: Path, asr_model_dir: Path, long_talk: Path, presses: int
) -> None:
    """Ctrl-C (once, or twice 0.1 s apart) while Whisper is inside the long file: acknowledged, exit 130 within
    seconds (not after the file's transcription), no abort from the abandoned CTranslate2 thread; the image
    finished before stays committed, the interrupted file is neither indexed nor recorded as failed. Where in a
    chunk the press lands is left to timing here; test_ingest_interrupts.py pins it inside one."""
    index_dir = tmp_path / "i"
    proc = spawn(["index", str(long_talk), "--index", str(index_dir), "--model", "test:hash",
                  "--asr-model", str(asr_model_dir)])  # fmt: skip
    _wait_for_catalog(index_dir)
    time.sleep(10)  # the models are loaded, the image is stored, Whisper is inside the long file
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    if presses == 2:
        time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=150)
    took = time.monotonic() - sent
    text = err.decode(errors="replace")
    assert proc.returncode == 130, text
    assert took < CTRL_C_EXIT_SECONDS, f"exit {took:.1f} s after Ctrl-C"
    assert "finishing current files" in text and "interrupted" in text
    assert "terminate called" not in text and "Traceback" not in text
    info = index_json(index_dir)
    assert info["files"] == 1 and info["failed"] == []  # the image; talk.m4a neither indexed nor failed
    assert check_index(index_dir).problems == []


@pytest.mark.slow
def test_rerun_after_ctrl_c_indexes_the_interrupted_file(tmp_path: Path, asr_model_dir: Path, long_talk: Path) -> None:
    index_dir = tmp_path / "i"
    proc = spawn(["index", str(long_talk), "--index", str(index_dir), "--model", "test:hash",
                  "--asr-model", str(asr_model_dir)])  # fmt: skip
    _wait_for_catalog(index_dir)
    time.sleep(10)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=150)
    assert proc.returncode == 130
    # The rerun skips speech only to stay fast: what matters is that the interrupted file counts as new.
    code, out, err = cli("index", str(long_talk), "--index", str(index_dir), "--no-asr", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["new_files"] == 1 and summary["unchanged_files"] == 1
    assert index_json(index_dir)["files"] == 2


def _wait_for_catalog(index_dir: Path) -> None:
    deadline = time.monotonic() + 120
    while not (index_dir / "catalog.sqlite").exists():
        assert time.monotonic() < deadline, "index never started"
        time.sleep(0.2)
