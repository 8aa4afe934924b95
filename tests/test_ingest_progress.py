"""Ingest progress tells the truth (issues 11, 25): it counts each media second once (audio-only files, videos with
or without sound), reaches its total,
names each file while it is worked on, and says at once that Ctrl-C was heard; frames of several files share
embedding batches; --workers N decodes with N processes."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmsearch.cli import ui
from mmsearch.ingest.runner import AsrOptions, IngestOptions, run_ingest
from mmsearch.ingest.workers import FileEvent, Idle
from mmsearch.models.registry import load_embedder
from mmsearch.testing.media import Shot, Utterance, make_audio, make_video
from mmsearch.types import FileFailure


class Recorder:
    """A Reporter that keeps every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def begin(self) -> None:
        self.calls.append(("begin", None))

    def planned(self, files: int, media_seconds: float) -> None:
        self.calls.append(("planned", (files, media_seconds)))

    def started(self, path: str) -> None:
        self.calls.append(("started", Path(path).name))

    def advanced(self, media_seconds: float) -> None:
        self.calls.append(("advanced", media_seconds))

    def file_done(self, path: str) -> None:
        self.calls.append(("done", Path(path).name))

    def file_failed(self, failure: FileFailure) -> None:
        self.calls.append(("failed", failure))

    def note(self, path: str, message: str) -> None:
        self.calls.append(("note", message))

    def interrupted(self) -> None:
        self.calls.append(("interrupted", None))

    def of(self, name: str) -> list[Any]:
        return [value for call, value in self.calls if call == name]


@pytest.mark.slow
def test_progress_counts_each_media_second_once_and_names_each_file(tmp_path: Path, asr_model_dir: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    video = make_video(
        media / "talk.mp4", [Shot("red", 3), Shot("blue", 3)], [Utterance("The red fox jumped.", 0.5)], size=(64, 48)
    )
    audio = make_audio(media / "podcast.wav", [Utterance("A podcast about trains and stations.", 0.3)], 8.0)
    recorder = Recorder()
    summary = run_ingest(
        IngestOptions(
            paths=(media,),
            index_dir=tmp_path / "idx",
            model="test:hash",
            asr=AsrOptions(model=str(asr_model_dir)),
            workers=1,
            shots="adaptive",
        ),  # fmt: skip
        recorder,
    )
    assert summary.new_files == 2 and not summary.failed
    ((files, total),) = recorder.of("planned")
    # Each media second once (issue 25): the video with sound is its duration, not its pictures plus its soundtrack.
    assert files == 2 and total == pytest.approx(video.duration + audio.duration, abs=0.3)
    assert sum(recorder.of("advanced")) == pytest.approx(total, rel=0.02)
    names = [value for call, value in recorder.calls if call in ("started", "done")]
    for name in ("talk.mp4", "podcast.wav"):
        assert names.index(name) < len(names) - 1 - names[::-1].index(name), f"{name} started after it was done"
    assert sorted(recorder.of("done")) == ["podcast.wav", "talk.mp4"]
    assert recorder.of("failed") == [] and recorder.of("interrupted") == []


def test_the_display_names_the_file_counts_media_and_hears_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    reporter = ui.ProgressReporter(enabled=True)
    with reporter:
        reporter.planned(2, 90.0)
        task = reporter.progress.tasks[0]
        assert task.total == 90.0  # time left is estimated from media seconds, not from file counts
        reporter.started("/media/Holiday clips/día 1 — beach.mp4")
        assert task.description == "día 1 — beach.mp4"
        reporter.advanced(30.0)
        reporter.advanced(15.0)
        assert task.completed == 45.0 and task.fields["media"] == "00:45/01:30 media"
        reporter.file_done("/media/Holiday clips/día 1 — beach.mp4")
        assert task.fields["files"] == "1/2 files"
        reporter.interrupted()
        assert task.description == "stopping"
        reporter.started("/media/next.mp4")  # a file still finishing does not hide that the run is stopping
        assert task.description == "stopping"
        reporter.advanced(500.0)  # never past the total
        assert task.completed == 90.0
    assert "finishing current files" in capsys.readouterr().err


class CountingEmbedder:
    """test:hash, recording which files' frames went into each image batch."""

    def __init__(self) -> None:
        self.inner = load_embedder("test:hash", "cpu")
        self.spec, self.dim = self.inner.spec, self.inner.dim
        self.batches: list[int] = []

    def embed_images(self, images: Any) -> np.ndarray:
        self.batches.append(len(images))
        return self.inner.embed_images(images)

    def embed_texts(self, texts: Any) -> np.ndarray:
        return self.inner.embed_texts(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_frames_of_several_short_files_share_embedding_batches(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    for i, colour in enumerate(["red", "green", "blue", "yellow", "white", "magenta"]):
        make_video(media / f"clip{i}.mp4", [Shot(colour, 2)], audio=False, size=(64, 48))
    embedder = CountingEmbedder()
    decoders: set[int] = set()

    def on_event(event: FileEvent | Idle) -> None:
        decoders.update(c.pid or 0 for c in mp.active_children() if c.name == "mmsearch-decode")

    options = IngestOptions(
        paths=(media,), index_dir=tmp_path / "idx", model="test:hash", asr=None, workers=2, shots="none",
        batch_size=8, dedupe=False,
    )  # fmt: skip
    summary = run_ingest(options, embedder=embedder, on_event=on_event)
    assert summary.new_files == 6 and not summary.failed and sum(embedder.batches) == 12  # 6 clips x 2 s at 1 fps
    # Twelve frames of six files in batches of up to eight: fewer embedding calls than files.
    assert len(embedder.batches) < 6 and max(embedder.batches) > 2
    assert len(decoders) == 2  # --workers 2: two decode processes
