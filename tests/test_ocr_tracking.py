"""OCR where text is: detection only on changed frames, recognition only of new or changed boxes, one segment per
line of text with its true span, counters kept as one line, still images read; RapidOCR on drawtext captions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from mmsearch.ingest.ocr import SETTLED, VOLATILE, Box, OcrTracker, Reading, read_image

BACKGROUND = 0
SIZE = (72, 320)


class PaintedOcr:
    """Text lines are rectangles painted with a grey level; the script says which text each level reads as."""

    def __init__(self, script: dict[int, str]) -> None:
        self.script = script
        self.detections = 0
        self.recognitions: list[str] = []

    def detect(self, frame: np.ndarray) -> list[Box]:
        self.detections += 1
        boxes = []
        for level in self.script:
            ys, xs = np.nonzero(frame[:, :, 0] == level)
            if len(ys):
                boxes.append(Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))
        return boxes

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        out = []
        for crop in crops:
            levels, counts = np.unique(crop[:, :, 0], return_counts=True)
            text = self.script.get(int(levels[np.argmax(counts)]), "")
            self.recognitions.append(text)
            out.append(Reading(text, 0.95))
        return out


def _frame(*lines: tuple[int, int, int], noise: int | None = None) -> np.ndarray:
    """A frame with a rectangle per (level, top row, width); `noise` seeds a busy background."""
    if noise is None:
        frame = np.full((*SIZE, 3), BACKGROUND, np.uint8)
    else:
        frame = np.random.default_rng(noise).integers(100, 200, (*SIZE, 3), dtype=np.uint8)
    for level, top, width in lines:
        frame[top : top + 16, 10 : 10 + width] = level
    return frame


def _run(tracker: OcrTracker, frames: list[np.ndarray], end: float | None = None) -> list[tuple[str, float, float]]:
    for t, frame in enumerate(frames):
        tracker.add(frame, float(t), 1.0)
    return [(line.text, line.start, line.end) for line in tracker.finish(end)]


def test_a_caption_shown_six_seconds_is_one_segment_read_once() -> None:
    engine = PaintedOcr({40: "PLATFORM SEVEN", 80: "GATE 4"})
    caption, second = (40, 10, 200), (80, 40, 80)
    frames = [_frame(), _frame(), *[_frame(caption)] * 3, *[_frame(caption, second)] * 3, _frame(), _frame()]
    assert _run(OcrTracker(engine), frames, 10.0) == [("PLATFORM SEVEN", 2.0, 8.0), ("GATE 4", 5.0, 8.0)]
    assert engine.detections == 4  # only the frames that changed: at 0, 2, 5 and 8 s
    assert engine.recognitions == ["PLATFORM SEVEN", "GATE 4"]  # each line read once, the first not again at 5 s


def test_on_a_busy_background_a_caption_is_detected_each_frame_but_read_once() -> None:
    engine = PaintedOcr({40: "Quarterly revenue"})
    frames = [_frame((40, 20, 240), noise=t) for t in range(6)]
    assert _run(OcrTracker(engine), frames) == [("Quarterly revenue", 0.0, 6.0)]
    assert engine.detections == 6 and engine.recognitions == ["Quarterly revenue"]


class Rereading(PaintedOcr):
    """Reads a changed box with a letter off every other time."""

    def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        readings = super().recognize(crops)
        odd = len(self.recognitions) % 2 == 0
        return [Reading(r.text[:-1] + "F", 0.9) if odd and r.text else r for r in readings]


def test_rereads_of_a_changed_box_vote_for_one_text() -> None:
    engine = Rereading({40: "DEPARTURES", 140: "DEPARTURES"})
    frames = [_frame((40 + 100 * (t % 2), 20, 200)) for t in range(5)]  # the box's pixels change every second
    assert _run(OcrTracker(engine), frames) == [("DEPARTURES", 0.0, 5.0)]
    assert len(engine.recognitions) == SETTLED  # then settled: the same box is not read again


def test_a_new_caption_in_the_same_place_ends_the_old_one() -> None:
    engine = PaintedOcr({40: "Museum closes at noon", 90: "Library opens at nine"})
    frames = [_frame((40, 20, 200))] * 3 + [_frame((90, 20, 200))] * 2
    assert _run(OcrTracker(engine), frames) == [
        ("Museum closes at noon", 0.0, 3.0),
        ("Library opens at nine", 3.0, 5.0),
    ]


def test_a_counter_is_one_line_not_one_segment_per_value() -> None:
    levels = range(20, 220, 10)
    engine = PaintedOcr({level: str(25 * n) for n, level in enumerate(levels, 1)})  # "25", "50", "75", ...
    frames = [_frame((level, 30, 60)) for level in levels]
    lines = _run(OcrTracker(engine), frames)
    assert len(lines) <= VOLATILE + 1 and lines[-1][2] == 20.0
    assert len(engine.recognitions) == VOLATILE + 1  # then it is not read any more
    assert lines[0] == ("25", 0.0, 1.0)


def test_a_box_the_detector_misses_for_a_frame_stays_one_line() -> None:
    engine = PaintedOcr({40: "EXIT"})

    class Flaky(PaintedOcr):
        def detect(self, frame: np.ndarray) -> list[Box]:
            self.detections += 1
            return [] if self.detections == 3 else engine.detect(frame)

    flaky = Flaky({40: "EXIT"})
    frames = [_frame((40, 20, 60), noise=t) for t in range(5)]
    assert _run(OcrTracker(flaky), frames) == [("EXIT", 0.0, 5.0)]


def test_low_confidence_and_one_letter_reads_are_not_lines() -> None:
    class Unsure(PaintedOcr):
        def recognize(self, crops: Sequence[np.ndarray]) -> list[Reading]:
            return [Reading("x" if n else "blurry", 0.3 if not n else 0.99) for n, _ in enumerate(crops)]

    frames = [_frame((40, 10, 100), (80, 40, 100))]
    assert _run(OcrTracker(Unsure({40: "", 80: ""})), frames) == []


def test_a_still_image_is_read_top_to_bottom() -> None:
    engine = PaintedOcr({40: "INVOICE 2231", 80: "Total due 14.50"})
    assert read_image(engine, _frame((80, 40, 200), (40, 5, 150))) == ["INVOICE 2231", "Total due 14.50"]


@pytest.mark.slow
def test_rapidocr_reads_a_six_second_caption_on_a_moving_background_as_one_segment(tmp_path: Path) -> None:
    pytest.importorskip("rapidocr")
    import av

    from mmsearch.ingest.ocr import RapidOcrEngine
    from mmsearch.testing.captions import Caption, make_captioned_video

    captions = [Caption("Quarterly revenue grew", 2.0, 8.0, size=30, y=0.7)]
    video = make_captioned_video(tmp_path / "c.mp4", captions, duration=10.0, background="testsrc2", fps=5)
    tracker = OcrTracker(RapidOcrEngine.load())
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and abs(frame.time - round(frame.time)) < 1e-3:
                tracker.add(frame.to_ndarray(format="rgb24"), float(round(frame.time)), 1.0)
    lines = tracker.finish(10.0)
    caption = [line for line in lines if "revenue" in line.text.lower()]
    assert [(x.text, x.start, x.end) for x in caption] == [("Quarterly revenue grew", 2.0, 8.0)]
    # testsrc2 draws a frame counter: it is not a segment per value
    assert len(lines) <= 1 + 2 * (VOLATILE + 1)

    image = np.full((240, 480, 3), 255, np.uint8)
    import cv2

    cv2.putText(image, "INVOICE 2231", (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (0, 0, 0), 3)
    assert read_image(RapidOcrEngine.load(), image) == ["INVOICE 2231"]


def test_ocr_asks_for_onnxruntimes_cuda_provider_on_a_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: the CUDA branch is followed up to RapidOCR's parameters."""
    pytest.importorskip("rapidocr")
    import rapidocr

    from mmsearch.ingest import ocr

    seen: list[dict[str, object]] = []
    monkeypatch.setattr(rapidocr, "RapidOCR", lambda params: seen.append(params) or object())
    monkeypatch.setattr(ocr, "_ort_has_cuda", lambda: True)
    ocr.RapidOcrEngine.load("cuda")
    ocr.RapidOcrEngine.load("cpu")
    assert seen[0]["EngineConfig.onnxruntime.use_cuda"] is True and "EngineConfig.onnxruntime.use_cuda" not in seen[1]
    assert seen[1]["Det.limit_side_len"] == ocr.DET_SIDE


@pytest.mark.slow
def test_a_still_image_is_found_by_its_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rapidocr")
    import json

    import cv2
    from typer.testing import CliRunner

    from mmsearch.cli.app import app

    media = tmp_path / "media"
    media.mkdir()
    image = np.full((300, 600, 3), 255, np.uint8)
    cv2.putText(image, "INVOICE 2231", (30, 90), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 3)
    cv2.putText(image, "Total due 14.50", (30, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 2)
    cv2.imwrite(str(media / "invoice.png"), image)
    monkeypatch.delenv("MMSEARCH_NO_OCR", raising=False)
    runner = CliRunner()
    index = ["--index", str(tmp_path / "idx")]
    done = runner.invoke(app, ["index", str(media), *index, "--model", "test:hash", "--no-asr", "--text-model", "none"])
    assert done.exit_code == 0, done.output
    answer = json.loads(runner.invoke(app, ["query", "invoice", *index, "--kind", "ocr", "--json"]).stdout)
    top = answer["results"][0]
    assert top["kind"] == "ocr" and "INVOICE" in top["text"] and top["path"].endswith("invoice.png")


class SlowPainted(PaintedOcr):
    def __init__(self, script: dict[int, str], fail: bool = False) -> None:
        super().__init__(script)
        self.fail = fail

    def detect(self, frame: np.ndarray) -> list[Box]:
        import time

        time.sleep(0.05)
        if self.fail:
            raise RuntimeError("detector broke")
        return super().detect(frame)


def test_ocr_runs_beside_the_consumer_and_each_file_gets_its_lines(tmp_path: Path) -> None:
    from mmsearch.ingest.extras import ExtraStages
    from mmsearch.types import FrameBatch, MediaFile, MediaKind, StageTimes

    times = StageTimes()
    stages = ExtraStages(times, ocr=SlowPainted({40: "PLATFORM SEVEN"}))
    media = MediaFile(tmp_path / "a.mp4", MediaKind.VIDEO, 1, 1, False, 4.0)
    frames = np.stack([_frame(), _frame((40, 10, 200)), _frame((40, 10, 200)), _frame()])
    batch = FrameBatch(media, frames, np.arange(4, dtype=np.float64), 1.0)
    for _ in range(3):  # the same file three times over: each run of it is its own
        stages.observe(media, batch)
        out = stages.finish(media, [])
        assert [(s.text, s.start, s.end) for s in out.segments] == [("PLATFORM SEVEN", 1.0, 3.0)]
    assert times.ocr > 0
    broken = ExtraStages(StageTimes(), ocr=SlowPainted({40: "X"}, fail=True))
    broken.observe(media, batch)
    with pytest.raises(RuntimeError, match="detector broke"):
        broken.finish(media, [])
    broken.observe(media, batch)
    broken.drop(media)  # a failed file is forgotten; the thread goes on with the next
    assert broken.finish(media, []).segments == []
