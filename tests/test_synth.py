"""Synthetic media must contain exactly what its ground truth says: cuts, colours, speech windows."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from mmsearch.errors import MediaError
from mmsearch.testing import media as synth
from mmsearch.testing.media import Shot, Utterance

FPS = 25
SHOTS = (
    Shot("red", 1.0),
    Shot("testsrc2", 1.2),
    Shot("#0000ff", 0.8),
    Shot("smptebars", 1.6),
    Shot("lime", 1.4),
)
UTTERANCES = (
    Utterance("the red fox jumped over the fence", 0.3),
    Utterance("a dolphin leaped through the ocean waves", 3.2),
)
# Mean absolute pixel difference (0-255) between consecutive frames: a cut jumps well past CUT_DIFF,
# while frames of one shot (even moving testsrc2) stay under SAME_SHOT_DIFF.
CUT_DIFF = 25.0
SAME_SHOT_DIFF = 10.0
# RMS of decoded audio (full scale 1.0): espeak speech sits far above SPEECH_RMS, AAC/MP3 silence far
# below SILENCE_RMS.
SPEECH_RMS = 0.03
SILENCE_RMS = 1e-3


def _probe(path: Path) -> dict:
    cmd = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)


def _frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(f.time, f.to_ndarray(format="rgb24").astype(np.float32)) for f in container.decode(video=0)]


def _audio(path: Path) -> np.ndarray:
    """Mono float samples at 16 kHz from the start of the first audio stream."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=synth.SAMPLE_RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def _rms(samples: np.ndarray, start: float, end: float) -> float:
    window = samples[round(start * synth.SAMPLE_RATE) : round(end * synth.SAMPLE_RATE)]
    return float(np.sqrt(np.mean(window**2)))


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def _assert_speech_where_truth_says(samples: np.ndarray, spans: tuple[synth.SpeechSpan, ...], duration: float) -> None:
    for start, end, text in spans:
        assert _rms(samples, start + 0.05, end - 0.05) > SPEECH_RMS, text
        after_start = samples[round(start * synth.SAMPLE_RATE) :]
        onset = start + np.flatnonzero(np.abs(after_start) > 0.01)[0] / synth.SAMPLE_RATE
        assert onset == pytest.approx(start, abs=0.03), text
    # Everything at least 0.2 s away from an utterance is silence.
    edges = [0.0, *[t for s, e, _ in spans for t in (s - 0.2, e + 0.2)], duration]
    for quiet_start, quiet_end in zip(edges[::2], edges[1::2], strict=True):
        if quiet_end - quiet_start > 0.1:
            assert _rms(samples, quiet_start, quiet_end) < SILENCE_RMS, (quiet_start, quiet_end)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> synth.VideoTruth:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return synth.make_video(path, SHOTS, UTTERANCES, size=(160, 120), fps=FPS)


@pytest.fixture(scope="module")
def frames(video: synth.VideoTruth) -> list[tuple[float, np.ndarray]]:
    return _frames(video.path)


def test_sentences_are_many_distinct_and_keyword_separable() -> None:
    assert len(synth.SENTENCES) >= 60
    assert len(set(synth.SENTENCES)) == len(synth.SENTENCES)
    words = [set(s.split()) - synth.FUNCTION_WORDS for s in synth.SENTENCES]
    assert all(len(w) >= 3 for w in words)
    for i, mine in enumerate(words):
        others = set().union(*words[:i], *words[i + 1 :])
        assert not mine & others, (synth.SENTENCES[i], mine & others)


def test_video_truth_is_exact(video: synth.VideoTruth, tmp_path: Path) -> None:
    assert video.duration == 6.0
    assert video.cuts == (1.0, 2.2, 3.0, 4.6)
    assert video.shots == (
        (0.0, 1.0, "red"),
        (1.0, 2.2, "testsrc2"),
        (2.2, 3.0, "#0000ff"),
        (3.0, 4.6, "smptebars"),
        (4.6, 6.0, "lime"),
    )
    assert [(u.start, u.text) for u in video.utterances] == [(u.start, u.text) for u in UTTERANCES]
    for i, (utt, span) in enumerate(zip(UTTERANCES, video.utterances, strict=True)):
        spoken = synth.speak(utt.text, tmp_path / f"{i}.wav")
        # The track is resampled to 16 kHz from espeak's 22.05 kHz, so lengths agree to one sample.
        assert span.end - span.start == pytest.approx(spoken, abs=1 / 16000)


def test_video_container_matches_truth(video: synth.VideoTruth) -> None:
    info = _probe(video.path)
    assert float(info["format"]["duration"]) == pytest.approx(6.0, abs=0.02)
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert streams.keys() == {"video", "audio"}
    assert (streams["video"]["codec_name"], streams["video"]["pix_fmt"]) == ("h264", "yuv420p")
    assert (streams["video"]["width"], streams["video"]["height"]) == (160, 120)
    assert int(streams["video"]["nb_frames"]) == 6 * FPS
    assert streams["audio"]["codec_name"] == "aac"


def test_cuts_fall_exactly_on_the_promised_frames(
    video: synth.VideoTruth, frames: list[tuple[float, np.ndarray]]
) -> None:
    assert [round(t * FPS) for t, _ in frames] == list(range(6 * FPS))
    pixels = [f for _, f in frames]
    cut_frames = {round(c * FPS) for c in video.cuts}
    for k in range(1, len(pixels)):
        change = _diff(pixels[k - 1], pixels[k])
        if k in cut_frames:
            assert change > CUT_DIFF, (k / FPS, change)
        else:
            assert change < SAME_SHOT_DIFF, (k / FPS, change)
    # Sampled as a search engine would, 0.1 s either side of each cut.
    for cut in video.cuts:
        before, after = pixels[round((cut - 0.1) * FPS)], pixels[round((cut + 0.1) * FPS)]
        assert _diff(before, after) > CUT_DIFF


def test_solid_shots_have_their_colour(video: synth.VideoTruth, frames: list[tuple[float, np.ndarray]]) -> None:
    for start, end, source in video.shots:
        rgb = synth.source_rgb(source)
        if rgb is None:
            continue
        for t in (start + 0.1, (start + end) / 2, end - 0.1):
            mean = frames[round(t * FPS)][1].mean(axis=(0, 1))
            # yuv420p limited range costs a few levels per channel.
            assert mean == pytest.approx(rgb, abs=4), (source, t)


def test_speech_energy_matches_utterance_windows(video: synth.VideoTruth) -> None:
    samples = _audio(video.path)
    assert len(samples) / synth.SAMPLE_RATE == pytest.approx(video.duration, abs=0.07)
    _assert_speech_where_truth_says(samples, video.utterances, video.duration)


def test_audio_flag_controls_the_audio_stream(tmp_path: Path) -> None:
    silent = synth.make_video(tmp_path / "silent.mp4", [Shot("red", 0.4), Shot("blue", 0.4)], fps=10)
    mute = synth.make_video(tmp_path / "mute.mp4", [Shot("red", 0.4), Shot("blue", 0.4)], fps=10, audio=False)
    assert [s["codec_type"] for s in _probe(silent.path)["streams"]] == ["video", "audio"]
    assert [s["codec_type"] for s in _probe(mute.path)["streams"]] == ["video"]
    assert (silent.has_audio, mute.has_audio, silent.utterances, silent.cuts) == (True, False, (), (0.4,))
    assert np.abs(_audio(silent.path)).max() < SILENCE_RMS


@pytest.mark.parametrize(
    ("shots", "utterances", "kwargs", "message"),
    [
        ([Shot("red", 1.0)], [Utterance("the red fox jumped over the fence", 0.5)], {}, "past the media"),
        ([Shot("red", 9.0)], [Utterance("hello there", 1.0), Utterance("bye", 1.2)], {}, "overlaps"),
        ([Shot("red", 9.0)], [Utterance("hello there", 1.0)], {"audio": False}, "audio track"),
        ([Shot("red", 1.01)], [], {}, "whole number of frames"),
        ([Shot("red", 1.0), Shot("red", 1.0)], [], {}, "adjacent shots"),
        ([], [], {}, "at least one shot"),
        ([Shot("red", 1.0)], [], {"size": (161, 120)}, "even frame sizes"),
        ([Shot("red", 1.0)], [], {"fps": 0}, "fps >= 1"),
    ],
)
def test_make_video_rejects_impossible_requests(
    tmp_path: Path, shots: list[Shot], utterances: list[Utterance], kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        synth.make_video(tmp_path / "bad.mp4", shots, utterances, **kwargs)
    assert not (tmp_path / "bad.mp4").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Shot("not-a-colour", 1.0), "unknown shot source"),
        (lambda: Shot("red", 0), "positive"),
        (lambda: Utterance("  ", 0.0), "empty"),
        (lambda: Utterance("hi", -1.0), ">= 0"),
    ],
)
def test_bad_shots_and_utterances_fail_on_construction(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_extract_frame_is_the_frame_on_screen(
    video: synth.VideoTruth, frames: list[tuple[float, np.ndarray]], tmp_path: Path
) -> None:
    # Inside the moving testsrc2 shot (frames 25-54) every frame differs, so a match pins the exact index.
    for t, index in [(1.0, 25), (1.5, 37), (1.52, 38), (1.539, 38), (2.199, 54), (5.99, 149)]:
        png = synth.extract_frame(video.path, t, tmp_path / f"{t}.png")
        image = np.asarray(Image.open(png).convert("RGB"), dtype=np.float32)
        assert image.shape == (120, 160, 3)
        diffs = [_diff(image, f) for _, f in frames]
        assert diffs[index] < 0.5, (t, diffs[index])
        for neighbour in (index - 1, index + 1):
            if 25 <= index <= 54 and 25 <= neighbour <= 54:
                assert diffs[neighbour] > diffs[index] + 1.0, (t, neighbour)
    with pytest.raises(MediaError, match="no frame"):
        synth.extract_frame(video.path, 6.5, tmp_path / "late.png")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("source", ["orange", "#123456", *synth.PATTERNS])
def test_make_image_size_and_colour(tmp_path: Path, source: str, suffix: str) -> None:
    path = synth.make_image(tmp_path / f"still{suffix}", source, size=(64, 48))
    with Image.open(path) as image:
        assert (image.size, image.format) == ((64, 48), "PNG" if suffix == ".png" else "JPEG")
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    rgb = synth.source_rgb(source)
    if rgb is None:
        assert pixels.std() > 10, "a pattern is not a flat colour"
    elif suffix == ".png":
        assert (pixels == np.array(rgb, dtype=np.float32)).all()
    else:
        assert pixels.mean(axis=(0, 1)) == pytest.approx(rgb, abs=4)


@pytest.mark.parametrize("suffix", [".wav", ".mp3", ".m4a", ".flac"])
def test_make_audio_formats(tmp_path: Path, suffix: str) -> None:
    utterances = [Utterance("the jeweler polished a sparkling diamond ring", 0.7), Utterance("goodbye", 4.0)]
    truth = synth.make_audio(tmp_path / f"speech{suffix}", utterances)
    last_end = truth.utterances[-1].end
    assert truth.duration == pytest.approx(last_end + synth.TAIL_SECONDS, abs=0.1) and truth.duration >= last_end
    assert [(u.start, u.text) for u in truth.utterances] == [(0.7, utterances[0].text), (4.0, "goodbye")]
    samples = _audio(truth.path)
    # Lossy codecs pad to whole frames (AAC 1024, MP3 1152 samples); wav and flac are exact.
    tolerance = 0.0 if suffix in (".wav", ".flac") else 0.08
    assert len(samples) / synth.SAMPLE_RATE == pytest.approx(truth.duration, abs=tolerance + 1e-9)
    _assert_speech_where_truth_says(samples, truth.utterances, truth.duration)


def test_make_audio_rejects_unknown_suffix_and_late_speech(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported audio suffix"):
        synth.make_audio(tmp_path / "x.ogg", [Utterance("hi", 0.0)])
    with pytest.raises(ValueError, match="past the media"):
        synth.make_audio(tmp_path / "x.wav", [Utterance("hello there", 1.0)], duration=1.2)


def test_speak_trims_silence(tmp_path: Path) -> None:
    seconds = synth.speak("the cyclist pedaled uphill", tmp_path / "s.wav")
    rate, samples = synth._read_wav(tmp_path / "s.wav")
    assert seconds == len(samples) / rate and 0.5 < seconds < 3.0
    assert abs(int(samples[0])) > synth.SILENCE_LEVEL and abs(int(samples[-1])) > synth.SILENCE_LEVEL


def test_missing_tool_is_a_media_error_with_a_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(MediaError, match="espeak-ng is not on PATH") as info:
        synth.speak("hello", tmp_path / "s.wav")
    assert info.value.hint and "apt-get" in info.value.hint


def test_tool_failure_carries_stderr(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video")
    with pytest.raises(MediaError, match="(?s)ffprobe failed.*Invalid data") as info:
        synth.extract_frame(junk, 0.0, tmp_path / "f.png")
    assert isinstance(info.value.__cause__, subprocess.CalledProcessError)


def test_sentences_are_dealt_once_per_collection_then_reused_never_twice_per_video() -> None:
    dealt = synth._deal_sentences(random.Random(3), n_videos=40, per_video=3)
    flat = [s for video in dealt for s in video]
    assert len(flat) == 120 and set(flat) == set(synth.SENTENCES)
    assert len(set(flat[: len(synth.SENTENCES)])) == len(synth.SENTENCES)
    assert all(len(set(video)) == 3 for video in dealt)
    assert dealt == synth._deal_sentences(random.Random(3), n_videos=40, per_video=3)


@pytest.mark.slow
def test_make_collection_is_deterministic_and_truthful(tmp_path: Path) -> None:
    def collect(name: str, seed: int) -> tuple[list[synth.VideoTruth], str]:
        synth._speech_pcm.cache_clear()  # each run synthesises its own speech rather than reusing the cache
        truths = synth.make_collection(tmp_path / name, 3, 2, seed, size=(96, 64), fps=10)
        return truths, synth.write_truth_json(truths, tmp_path / name / "truth.json").read_text()

    (first, doc), (_, again), (_, other) = collect("a", 7), collect("b", 7), collect("c", 8)
    assert doc == again and doc != other
    assert [v["path"] for v in json.loads(doc)["videos"]] == [
        "video_000.mp4",
        "video_001.mp4",
        "video_002.mp4",
    ]
    for name in ("video_000.mp4", "video_001.mp4", "video_002.mp4"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert synth.load_truth_json(tmp_path / "a" / "truth.json") == [
        synth.VideoTruth(**{**vars(t), "path": t.path.resolve()}) for t in first
    ]
    spoken = [u.text for t in first for u in t.utterances]
    assert len(spoken) == 6 and len(set(spoken)) == 6 and set(spoken) <= set(synth.SENTENCES)
    for truth in first:
        sources = [s.source for s in truth.shots]
        assert 3 <= len(sources) <= 5 and len(set(sources)) == len(sources)
        assert all(end - start >= synth.MIN_SHOT for start, end, _ in truth.shots)
        assert truth.utterances[-1].end + synth.TAIL_SECONDS <= truth.duration
        assert float(_probe(truth.path)["format"]["duration"]) == pytest.approx(truth.duration, abs=0.02)
        _assert_speech_where_truth_says(_audio(truth.path), truth.utterances, truth.duration)
