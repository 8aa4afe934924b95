"""Times on the container's timeline: audio that starts late, timestamps that start late, edit lists, VFR.

The files come from mmsearch/testing/timeline.py, each with the exact times (as a player shows them) of its
sentences and its cut. Decoding is checked without Whisper (where the speech's energy starts, where the picture
turns blue); Whisper tiny.en then checks the speech segments end to end.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from mmsearch.ingest.audio import AUDIO_SAMPLE_RATE, iter_audio, load_audio
from mmsearch.ingest.decode import iter_frames
from mmsearch.ingest.discover import probe
from mmsearch.testing.timeline import TimelineTruth, make_timeline_set

pytestmark = pytest.mark.slow

# espeak's speech is sample-exact in the mix; AAC framing and the resampler move its onset by a few ms.
ONSET_TOLERANCE = 0.03
# A speech segment's start from Whisper tiny.en (VAD padding, 20 ms tokens) against the spoken word.
WHISPER_TOLERANCE = 0.5


@pytest.fixture(scope="module")
def timeline_set(tmp_path_factory: pytest.TempPathFactory, media_tools: None) -> list[TimelineTruth]:
    return make_timeline_set(tmp_path_factory.mktemp("timeline"))


def _onsets(path: Path) -> list[float]:
    """Where speech starts after at least 0.8 s of quiet, on the file's timeline, from the decoded windows."""
    out: list[float] = []
    last = -1e9
    for clip in iter_audio(probe(path), window_seconds=4.0):
        for i in np.flatnonzero(np.abs(clip.samples) > 0.02):
            t = clip.start + i / AUDIO_SAMPLE_RATE
            if t - last > 0.8:
                out.append(t)
            last = t
    return out


def test_speech_is_decoded_where_it_is_heard(timeline_set: list[TimelineTruth]) -> None:
    for truth in timeline_set:
        onsets = _onsets(truth.path)
        expected = [t for t, _ in truth.speech]
        assert len(onsets) == len(expected), (truth.how, onsets)
        for got, want in zip(onsets, expected, strict=True):
            assert abs(got - want) < ONSET_TOLERANCE, (truth.how, got, want)


def _blue_from(times: np.ndarray, frames: np.ndarray) -> float:
    blue = frames[..., 2].mean(axis=(1, 2)) > 128
    return float(times[int(np.argmax(blue))])


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_frames_and_cuts_are_at_presentation_times(timeline_set: list[TimelineTruth], decoder: str) -> None:
    if decoder == "decord" and importlib.util.find_spec("decord") is None:
        pytest.skip("decord has no wheel here")
    from mmsearch.ingest.decode_decord import iter_frames as decord_frames

    read = iter_frames if decoder == "pyav" else decord_frames
    for truth in timeline_set:
        if decoder == "decord" and ("variable" in truth.how or "edit list" in truth.how):
            # decord refuses the VFR mkv ("broken metadata") and ignores edit lists (its times for this file are
            # 0.6 s early); --decoder auto is PyAV, which honours both.
            continue
        batches = list(read(probe(truth.path), 10.0))
        times = np.concatenate([b.times for b in batches])
        frames = np.concatenate([b.frames for b in batches])
        assert abs(times[0] - truth.first_frame) < 1e-3, (truth.how, times[:3])
        for cut in truth.cuts:
            assert abs(_blue_from(times, frames) - cut) < 0.1 + 1e-6, (truth.how, cut)


def test_shots_follow_the_timeline(timeline_set: list[TimelineTruth]) -> None:
    from mmsearch.ingest.shots import detect_shots

    for truth in timeline_set:
        if not truth.cuts:
            continue
        shots = detect_shots(truth.path, None)
        assert len(shots) == 2, (truth.how, shots)
        assert abs(shots[0][0] - truth.first_frame) < 0.05, (truth.how, shots)
        assert abs(shots[1][0] - truth.cuts[0]) < 0.1, (truth.how, shots)


def test_probe_records_the_first_timestamp(timeline_set: list[TimelineTruth]) -> None:
    by_name = {t.path.name: t for t in timeline_set}
    ts = probe(by_name["ts-offset.mkv"].path)
    # The container starts with the audio's first packet (AAC priming, ~64 ms before the first frame).
    assert 1.3 < ts.start_time <= 1.4 and ts.end is not None and ts.end > 13.0
    assert probe(by_name["itsoffset.mp4"].path).start_time == 0.0


def test_a_late_audio_stream_starts_its_window_late(timeline_set: list[TimelineTruth]) -> None:
    late = next(t for t in timeline_set if "itsoffset" in t.how)
    clip = load_audio(probe(late.path))
    assert clip is not None and 1.9 < clip.start < 2.0  # the stream's start_time: 2 s less AAC priming


def test_whisper_segments_start_at_the_words(
    timeline_set: list[TimelineTruth], asr_model_dir: Path, tmp_path: Path
) -> None:
    from mmsearch.index.show import describe_file
    from mmsearch.ingest.runner import IngestOptions, run_ingest
    from mmsearch.ingest.transcribe import AsrOptions

    index = tmp_path / "index"
    paths = tuple(t.path for t in timeline_set)
    summary = run_ingest(
        IngestOptions(paths=paths, index_dir=index, model="test:hash", asr=AsrOptions(model=str(asr_model_dir)))
    )
    assert summary.failed == []
    for truth in timeline_set:
        speech = describe_file(index, truth.path)["speech"]
        assert isinstance(speech, list) and len(speech) == len(truth.speech), (truth.how, speech)
        for row, (start, _) in zip(speech, truth.speech, strict=True):
            assert abs(row["start"] - start) < WHISPER_TOLERANCE, (truth.how, row, start)
