"""The extra channels without real models (OCR tracking: test_ocr_tracking.py): audio windows, spaces in catalog and writer, registry,
migration of an old index, and `mmsearch show`/`info` (real-model tests are in test_extra_channels_real.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.errors import UsageError
from mmsearch.index.catalog import MIGRATIONS, SCHEMA_VERSION, SPACES_SCHEMA, Catalog
from mmsearch.index.manifest import space_infos
from mmsearch.ingest.extras import ExtrasOptions
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.sounds import windows
from mmsearch.search.channels import CHANNELS, REGISTRY
from mmsearch.search.fusion import parse_weights
from mmsearch.search.searcher import Query, Searcher
from mmsearch.testing.media import Shot, make_video
from mmsearch.types import AudioClip, MediaFile, MediaKind, SegmentKind

runner = CliRunner()


def test_audio_windows_are_five_seconds_with_half_overlap() -> None:
    media = MediaFile(Path("x.wav"), MediaKind.AUDIO, 1, 1, True, 12.0)
    clip = AudioClip(media, np.zeros(16000 * 12, np.float32), 16000)
    assert [(a, b) for a, b, _ in windows(clip)] == [(0.0, 5.0), (2.5, 7.5), (5.0, 10.0), (7.0, 12.0)]
    short = AudioClip(media, np.zeros(16000 * 3, np.float32), 16000)
    assert [(a, b) for a, b, _ in windows(short)] == [(0.0, 3.0)]


def test_registry_lists_the_new_channels_and_weights_accept_them() -> None:
    assert CHANNELS == ("visual", "speech", "keyword", "text", "audio", "face", "people")
    assert REGISTRY["text"].space == "text" and SegmentKind.OCR in REGISTRY["text"].kinds
    assert REGISTRY["audio"].kinds == frozenset({SegmentKind.AUDIO})
    assert SegmentKind.OCR in REGISTRY["keyword"].kinds
    assert parse_weights(["text=2", "audio=0.5"]) == (("text", 2.0), ("audio", 0.5))


def test_catalog_migrates_a_schema_3_index_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for number, script in enumerate(MIGRATIONS[: SPACES_SCHEMA - 1], start=1):
        conn.executescript(script)
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (number,))
    conn.execute("INSERT INTO files VALUES (1, x'61', 'a', 'video', 1, 1, 'h', 2.0, 1, 'now', NULL)")
    conn.execute("INSERT INTO segments VALUES (7, 1, 'speech', 0.0, 1.0, 'hello')")
    conn.commit()
    conn.close()
    old = Catalog.open(path, readonly=True)
    assert old.space_counts() == {} and old.space_vectors("text", 4)[0].size == 0  # read-only: not migrated
    old.close()
    catalog = Catalog.open(path)
    assert catalog.schema_version() == SCHEMA_VERSION >= SPACES_SCHEMA
    catalog.begin()
    catalog.add_space_vectors("text", [7], np.array([[0.0, 1.0, 0.0, 0.0]], np.float32))
    catalog.commit()
    ids, vectors = catalog.space_vectors("text", 4)
    assert ids.tolist() == [7] and vectors.tolist() == [[0.0, 1.0, 0.0, 0.0]]
    assert catalog.space_counts(file_id=1) == {"text": 1}
    catalog.begin()
    catalog.remove_file(1)
    catalog.commit()
    assert catalog.space_counts() == {}  # the vectors went with their segment
    catalog.close()


@pytest.fixture
def plain_index(tmp_path: Path) -> tuple[Path, Path]:
    """One silent video indexed without any extra channel: what an index from before this change holds."""
    media = tmp_path / "media"
    media.mkdir()
    video = media / "clip.mp4"
    make_video(video, [Shot("red", 2.0), Shot("blue", 2.0)], audio=False)
    index = tmp_path / "idx"
    run_ingest(IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=None, dedupe=False))
    return index, video


def test_an_index_without_extra_spaces_answers_and_refuses_the_text_channel_clearly(
    plain_index: tuple[Path, Path],
) -> None:
    index, _ = plain_index
    searcher = Searcher.open(index)
    try:
        assert searcher.spaces.infos == {}
        assert searcher.search(Query(text="red", top_k=3, fusion="rrf"))  # the visual channel still answers
        with pytest.raises(UsageError, match="no text space"):
            searcher.search(Query(text="red", channels=("text",)))
    finally:
        searcher.close()


def test_a_missing_text_model_degrades_in_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    media = tmp_path / "media"
    media.mkdir()
    make_video(media / "clip.mp4", [Shot("red", 2.0)], audio=False)
    extras = ExtrasOptions(text_model=str(tmp_path / "no-such-model"))
    options = IngestOptions(paths=(media,), index_dir=tmp_path / "idx", model="test:hash", asr=None, extras=extras)
    summary = run_ingest(options)
    assert summary.files == 1 and not summary.failed
    lines = [r.getMessage() for r in caplog.records if "channel off" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("text channel off:") and "\n" not in lines[0]
    catalog = Catalog.open(tmp_path / "idx" / "catalog.sqlite", readonly=True)
    assert space_infos(catalog.manifest()) == {}
    catalog.close()


def test_show_and_info_cli(plain_index: tuple[Path, Path]) -> None:
    index, video = plain_index
    result = runner.invoke(app, ["show", str(video), "--index", str(index), "--json"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["path"] == str(video) and shown["segments"] == {"frame": 4}
    assert shown["vectors"] == {"clip": 4} and shown["ocr"] == [] and len(shown["shots"]) == 2
    result = runner.invoke(app, ["show", str(video), "--index", str(index)])
    assert result.exit_code == 0 and "shots (2):" in result.stdout and "ocr (0):" in result.stdout
    result = runner.invoke(app, ["show", str(video.parent / "other.mp4"), "--index", str(index)])
    assert result.exit_code == 2 and "is not in the index" in result.stderr
    info = json.loads(runner.invoke(app, ["info", "--index", str(index), "--json"]).stdout)
    assert info["spaces"] == {"clip": {"model": "test:hash", "dim": info["dim"], "vectors": 4}}
    assert info["segments"]["ocr"] == 0 and info["segments"]["audio"] == 0


def test_writer_keeps_extra_spaces_apart_from_clip_and_copies_them(tmp_path: Path) -> None:
    from mmsearch.errors import ModelMismatch
    from mmsearch.index.facade import Index
    from mmsearch.types import Segment, SpaceVectors

    media = MediaFile(tmp_path / "a.mp4", MediaKind.VIDEO, 1, 1, True, 4.0)
    segments = [
        Segment(SegmentKind.FRAME, 0.0, 1.0),
        Segment(SegmentKind.SPEECH, 0.0, 2.0, "hello"),
        Segment(SegmentKind.OCR, 1.0, 3.0, "EXIT"),
        Segment(SegmentKind.AUDIO, 0.0, 4.0),
    ]
    clip = np.eye(2, 8, dtype=np.float32)  # the frame and the speech segment only
    text = SpaceVectors((1, 2), np.eye(2, 3, dtype=np.float32))
    audio = SpaceVectors((3,), np.ones((1, 5), np.float32) / np.sqrt(5))
    with Index.write(tmp_path / "idx", "test:hash", untrained=True, device="cpu") as writer:
        writer.open_vectors(lambda: 8)
        writer.use_space("text", "m1", 3)
        writer.add_file(media, "sha", segments, clip, spaces={"text": text, "audio": audio})
        with pytest.raises(ModelMismatch, match="text space"):
            writer.use_space("text", "m2", 3)
        record = writer.files()[0]
        content = writer.file_content(record)
        assert [s.kind for s in content.segments] == [s.kind for s in segments]
        assert content.vectors.shape == (2, 8) and writer.store.ntotal == 2
        assert content.spaces["text"].rows == (1, 2) and content.spaces["audio"].rows == (3,)
        assert np.allclose(content.spaces["text"].vectors, text.vectors)
        copy = MediaFile(tmp_path / "b.mp4", MediaKind.VIDEO, 1, 1, True, 4.0)
        writer.add_file(copy, "sha", content.segments, content.vectors, spaces=content.spaces)
        assert writer.space_counts() == {"text": 4, "audio": 2}
