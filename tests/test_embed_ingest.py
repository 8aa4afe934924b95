"""Index-time embedding choices end to end: manifest records, int8 queries with the int8 text tower, CLI flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.index.catalog import Catalog
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.models import onnx_runtime
from mmsearch.models.onnx_runtime import OnnxClipEmbedder, Thresholds
from mmsearch.models.precision import EmbedChoice
from mmsearch.search.searcher import Query, Searcher
from mmsearch.testing.media import Shot, extract_frame, make_video

pytestmark = pytest.mark.slow
TINY = "random:mmsearch-tiny"


@pytest.fixture
def video(tmp_path: Path, media_tools: None) -> Path:
    (tmp_path / "media").mkdir()
    return make_video(tmp_path / "media" / "v.mp4", [Shot("red", 3), Shot("testsrc", 3)], audio=False).path


def _manifest(index_dir: Path) -> dict[str, str]:
    catalog = Catalog.open(index_dir / "catalog.sqlite", readonly=True)
    try:
        return catalog.manifest()
    finally:
        catalog.close()


def _frame_count(index_dir: Path) -> int:
    catalog = Catalog.open(index_dir / "catalog.sqlite", readonly=True)
    try:
        return int(catalog.counts().get("frame", 0))
    finally:
        catalog.close()


def test_an_int8_cpu_index_queries_with_the_int8_towers(video: Path, tmp_path: Path) -> None:
    # (`--precision auto` picks int8 or PyTorch by measurement: test_embed_onnx.py)
    index_dir = tmp_path / "index"
    int8 = EmbedChoice(precision="int8")
    summary = run_ingest(
        IngestOptions(paths=(video,), index_dir=index_dir, model=TINY, asr=None, device="cpu", embed=int8)
    )
    assert summary.failed == []
    manifest = _manifest(index_dir)
    assert (manifest["embed_runtime"], manifest["embed_precision"]) == ("onnx", "int8")
    for key in ("embed_image_int8_cos", "embed_text_int8_cos", "embed_first_batch_int8_cos"):
        mean = float(manifest[key].split()[1])
        assert 0.99 <= mean <= 1.0, (key, manifest[key])
    assert manifest["embed_int8_fallback"] == ""
    searcher = Searcher.open(index_dir, device="cpu")
    try:
        assert isinstance(searcher.embedder, OnnxClipEmbedder) and searcher.embedder.precision == "int8"
        query = extract_frame(video, 4.0, tmp_path / "q.png")
        top = searcher.search(Query(image=query, modality="video", top_k=1))[0]
        assert top.score > 0.99 and top.start is not None and top.end is not None and top.start <= 4.0 < top.end
    finally:
        searcher.close()


def test_failed_self_check_at_index_time_is_recorded_and_queries_follow(
    video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_runtime, "Thresholds", lambda: Thresholds(mean=1.01, min=1.01))
    index_dir = tmp_path / "index"
    int8 = EmbedChoice(precision="int8")
    run_ingest(IngestOptions(paths=(video,), index_dir=index_dir, model=TINY, asr=None, device="cpu", embed=int8))
    manifest = _manifest(index_dir)
    assert (manifest["embed_runtime"], manifest["embed_precision"]) == ("onnx", "fp32")
    assert "below 1.01 mean / 1.01 min cosine" in manifest["embed_int8_fallback"]
    searcher = Searcher.open(index_dir, device="cpu")
    try:
        assert isinstance(searcher.embedder, OnnxClipEmbedder) and searcher.embedder.precision == "fp32"
    finally:
        searcher.close()


def test_cli_flags_choose_runtime_and_dedupe(video: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    plain = tmp_path / "plain"
    args = ["index", str(video), "--index", str(plain), "--model", TINY, "--no-asr", "--device", "cpu"]
    result = runner.invoke(app, [*args, "--runtime", "torch", "--precision", "fp32", "--no-dedupe"])
    assert result.exit_code == 0, result.output
    assert (_manifest(plain)["embed_runtime"], _manifest(plain)["embed_precision"]) == ("torch", "fp32")
    assert _frame_count(plain) == 6  # every sampled second

    deduped = tmp_path / "deduped"
    args[3] = str(deduped)
    result = runner.invoke(app, [*args, "--runtime", "torch", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert _frame_count(deduped) == 4  # the static red shot costs one frame; testsrc changes every second


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--precision", "fp16"], "needs a CUDA GPU"),
        (["--runtime", "torch", "--precision", "int8"], "runs in ONNX"),
        (["--precision", "fp8"], "--precision must be one of"),
        (["--runtime", "jax"], "--runtime must be one of"),
    ],
)
def test_cli_rejects_impossible_choices(video: Path, tmp_path: Path, flags: list[str], message: str) -> None:
    result = CliRunner().invoke(
        app,
        ["index", str(video), "--index", str(tmp_path / "i"), "--model", TINY, "--no-asr", "--device", "cpu", *flags],
    )
    assert result.exit_code == 2 and message in result.output, result.output
