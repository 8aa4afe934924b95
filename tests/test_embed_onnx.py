"""int8 ONNX towers: agreement with fp32, the self-check and its fallback, the export cache, runtime choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsearch.errors import UsageError
from mmsearch.models import onnx_runtime
from mmsearch.models.onnx_runtime import OnnxClipEmbedder, Thresholds, export_dir, probe_images
from mmsearch.models.precision import EmbedChoice
from mmsearch.models.registry import load_embedder
from mmsearch.models.spec import parse_model_spec

TINY = "random:mmsearch-tiny"
FAILING = Thresholds(mean=1.01, min=1.01)  # no embedding can meet it: forces the fallback


def _frames(n: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, (90, 160, 3), dtype=np.uint8) for _ in range(n)]


def test_int8_agrees_with_torch_fp32_and_records_it() -> None:
    int8 = load_embedder(TINY, "cpu", EmbedChoice(precision="int8"))
    assert isinstance(int8, OnnxClipEmbedder) and int8.precision == "int8" and int8.fallback is None
    fp32 = load_embedder(TINY, "cpu")
    cos_images = (int8.embed_images(_frames()) * fp32.embed_images(_frames())).sum(axis=1)
    cos_texts = (int8.embed_texts(["a dog", "a red car"]) * fp32.embed_texts(["a dog", "a red car"])).sum(axis=1)
    assert cos_images.min() > 0.99 and cos_texts.min() > 0.99
    record = int8.runtime_record()
    assert record["embed_runtime"] == "onnx" and record["embed_precision"] == "int8"
    assert record["embed_image_int8_cos"].startswith("mean 0.99") and "embed_text_int8_cos" in record
    assert record["embed_first_batch_int8_cos"].startswith("mean 0.99")  # the first real batch was checked too
    assert 0 <= float(record["embed_int8_score_drift"]) < 0.05


def test_onnx_fp32_equals_torch_fp32() -> None:
    onnx = load_embedder(TINY, "cpu", EmbedChoice("onnx", "fp32"))
    torch_fp32 = load_embedder(TINY, "cpu", EmbedChoice("torch", "fp32"))
    assert np.allclose(onnx.embed_images(_frames()), torch_fp32.embed_images(_frames()), atol=1e-4)
    assert np.allclose(onnx.embed_texts(["probe text"]), torch_fp32.embed_texts(["probe text"]), atol=1e-4)


def test_short_texts_use_the_short_text_tower_and_long_ones_the_full_one() -> None:
    onnx = load_embedder(TINY, "cpu", EmbedChoice("onnx", "fp32"))
    torch_fp32 = load_embedder(TINY, "cpu", EmbedChoice("torch", "fp32"))
    assert isinstance(onnx, OnnxClipEmbedder) and onnx.meta["towers"] == ["image", "text", onnx_runtime.SHORT_TEXT]
    short, long = ["a dog barking", "red fox"], ["word " * 30]  # 5 and 4 tokens; 32 tokens
    used: list[str] = []
    session = onnx.session
    onnx.session = lambda tower, precision: used.append(tower) or session(tower, precision)  # type: ignore[method-assign]
    assert np.allclose(onnx.embed_texts(short), torch_fp32.embed_texts(short), atol=1e-4)
    assert np.allclose(onnx.embed_texts(long), torch_fp32.embed_texts(long), atol=1e-4)
    assert used == [onnx_runtime.SHORT_TEXT, "text"]
    int8 = load_embedder(TINY, "cpu", EmbedChoice(precision="int8"))
    assert "embed_text16_int8_cos" in int8.runtime_record()  # its agreement with fp32 is measured like the others'


def test_failing_probe_check_falls_back_to_fp32_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    spec = parse_model_spec(TINY)
    emb = OnnxClipEmbedder.load(spec, "int8", FAILING)
    assert emb.precision == "fp32"
    assert emb.fallback is not None and "probe inputs" in emb.fallback and "1.01" in emb.fallback
    assert "using fp32" in caplog.text
    record = emb.runtime_record()
    assert record["embed_precision"] == "fp32" and record["embed_int8_fallback"] == emb.fallback
    fp32 = OnnxClipEmbedder.load(spec, "fp32")
    assert np.array_equal(emb.embed_images(_frames()), fp32.embed_images(_frames()))


def test_failing_first_batch_falls_back_before_anything_is_stored() -> None:
    spec = parse_model_spec(TINY)
    emb = OnnxClipEmbedder.load(spec, "int8")
    assert emb.precision == "int8"
    emb.thresholds = FAILING  # the probes passed; now the first real frames disagree
    vectors = emb.embed_images(_frames())
    assert emb.precision == "fp32" and emb.fallback is not None and "first 5 real images" in emb.fallback
    fp32 = OnnxClipEmbedder.load(spec, "fp32")
    assert np.allclose(vectors, fp32.embed_images(_frames()), atol=1e-6)  # the batch itself came out in fp32
    assert "embed_first_batch_int8_cos" in emb.runtime_record()


@pytest.mark.slow  # a fresh export of the tiny model (~20 s on a loaded 2-core machine)
def test_export_is_cached_by_weights_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("MMSEARCH_CACHE", str(tmp_path / "cache"))
    first = load_embedder(TINY, "cpu", EmbedChoice(precision="int8"))
    directory = export_dir(parse_model_spec(TINY))
    assert directory.parent == tmp_path / "cache" / "onnx"
    stamps = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    assert {"image-int8.onnx", "text-int8.onnx", "image-fp32.onnx", "text-fp32.onnx", "meta.json"} <= set(stamps)

    def no_export(*args: object) -> None:
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(onnx_runtime, "_export", no_export)
    again = load_embedder(TINY, "cpu", EmbedChoice(precision="int8"))
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == stamps
    assert np.array_equal(again.embed_images(_frames()), first.embed_images(_frames()))

    # Other weights (a checkpoint whose bytes differ) get their own export, keyed by the file's hash.
    model = load_embedder(TINY, "cpu").model  # type: ignore[attr-defined]
    with torch.no_grad():
        model.visual.proj.mul_(-1.0)
    torch.save(model.state_dict(), tmp_path / "flipped.pt")
    other = export_dir(parse_model_spec(f"mmsearch-tiny:{tmp_path / 'flipped.pt'}"))
    assert other != directory and not other.exists()


def test_standalone_tokenizer_equals_open_clips() -> None:
    import open_clip

    emb = load_embedder(TINY, "cpu", EmbedChoice(precision="int8"))
    assert type(emb.tokenizer).__name__ == "ClipTokenizer"  # type: ignore[attr-defined]  # torch-free
    texts = ["A Dog, barking!", "  two   spaces ", "ünïcödé café", ""]
    ref = open_clip.get_tokenizer("ViT-B-32")(texts)
    assert np.array_equal(np.asarray(emb.tokenizer(texts)), ref.numpy())  # type: ignore[attr-defined]


def test_probe_images_are_fixed() -> None:
    a, b = probe_images(), probe_images()
    assert len(a) == onnx_runtime.PROBE_IMAGES and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("runtime", "precision", "device", "expected"),
    [
        (None, "auto", "cpu", ("onnx", "int8")),
        (None, "auto", "cuda", ("torch", "fp16")),
        (None, "fp32", "cpu", ("torch", "fp32")),
        (None, "fp32", "cuda", ("torch", "fp32")),
        (None, "int8", "cpu", ("onnx", "int8")),
        ("torch", "auto", "cpu", ("torch", "fp32")),
        ("onnx", "auto", "cpu", ("onnx", "int8")),
        ("onnx", "fp32", "cpu", ("onnx", "fp32")),
        (None, "fp16", "cuda", ("torch", "fp16")),
    ],
)
def test_runtime_choice(runtime: str | None, precision: str, device: str, expected: tuple[str, str]) -> None:
    assert EmbedChoice(runtime, precision).resolve(device) == expected


@pytest.mark.parametrize(
    ("runtime", "precision", "device"),
    [
        ("torch", "int8", "cpu"),
        ("onnx", "fp16", "cpu"),
        (None, "fp16", "cpu"),
        (None, "int8", "cuda"),
        ("onnx", "auto", "cuda"),
        ("tf", "auto", "cpu"),
        (None, "fp8", "cpu"),
    ],
)
def test_impossible_choices_are_usage_errors(runtime: str | None, precision: str, device: str) -> None:
    with pytest.raises(UsageError):
        EmbedChoice(runtime, precision).resolve(device)


def test_queries_use_the_towers_of_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmsearch.models import precision

    int8_index = {"embed_runtime": "onnx", "embed_precision": "int8"}
    # the text tower of the index's precision; the first-batch check is an index-time matter
    assert EmbedChoice.of_index(int8_index, "cpu") == EmbedChoice("onnx", "int8", check_first_batch=False)
    fp32_index = {"embed_runtime": "onnx", "embed_precision": "fp32"}
    assert EmbedChoice.of_index(fp32_index, "cpu") == EmbedChoice("onnx", "fp32", check_first_batch=False)
    assert EmbedChoice.of_index({}, "cpu") is None  # older indexes and test models: PyTorch as before
    monkeypatch.setattr(precision, "resolve_device", lambda device: "cuda")
    assert EmbedChoice.of_index(int8_index, "auto") is None  # a GPU queries with fp16 PyTorch


def test_cuda_is_chosen_automatically_and_loads_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: the CUDA branch is followed up to OpenClipEmbedder.load, which is asked for fp16 on cuda."""
    from mmsearch.models import precision

    calls: list[tuple[str, str | None]] = []
    monkeypatch.setattr(precision, "resolve_device", lambda device: "cuda")
    monkeypatch.setattr(
        precision.OpenClipEmbedder, "load", classmethod(lambda cls, spec, dev, prec: calls.append((dev, prec)))
    )
    precision.load_clip(parse_model_spec(TINY), "auto", EmbedChoice())
    assert calls == [("cuda", "fp16")]


def test_auto_falls_back_to_torch_when_the_export_fails_but_an_explicit_onnx_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from mmsearch.models.clip import OpenClipEmbedder

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter cannot trace this architecture")

    monkeypatch.setattr(OnnxClipEmbedder, "load", broken)
    emb = load_embedder(TINY, "cpu", EmbedChoice())
    assert isinstance(emb, OpenClipEmbedder) and emb.precision == "fp32"
    assert "cannot export" in caplog.text and "PyTorch fp32" in caplog.text
    with pytest.raises(UsageError, match="cannot export"):
        load_embedder(TINY, "cpu", EmbedChoice("onnx", "int8"))


def test_auto_on_a_cpu_keeps_the_faster_runtime_measured_once_per_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmsearch.models import precision, runtime_choice
    from mmsearch.models.clip import OpenClipEmbedder
    from mmsearch.models.precision import runtime_record

    timed: list[str] = []

    def fake_rate(embed: object, images: object) -> float:
        owner = type(getattr(embed, "__self__", None)).__name__
        timed.append(owner)
        return 5.0 if owner == "OnnxClipEmbedder" else 9.0  # PyTorch wins on this pretend machine

    monkeypatch.setattr(runtime_choice, "frames_per_second", fake_rate)
    # A machine of its own: other tests (sharing the session's cache) may have measured this model already.
    monkeypatch.setattr(runtime_choice, "machine_ident", lambda: "the pretend machine of this test")
    first = load_embedder(TINY, "cpu", EmbedChoice())
    assert isinstance(first, OpenClipEmbedder) and sorted(timed) == ["OnnxClipEmbedder", "OpenClipEmbedder"]
    record = runtime_record(first)
    assert record["embed_runtime"] == "torch" and record["embed_choice"].startswith("torch-fp32 (auto")
    assert "onnx-int8 5.00 frames/s" in record["embed_choice"] and "torch-fp32 9.00 frames/s" in record["embed_choice"]
    again = load_embedder(TINY, "cpu", EmbedChoice())  # cached: nothing is timed again
    assert isinstance(again, OpenClipEmbedder) and len(timed) == 2
    monkeypatch.setattr(precision, "resolve_device", lambda device: "cpu")
    monkeypatch.setattr(runtime_choice, "machine_ident", lambda: "another CPU")
    monkeypatch.setattr(runtime_choice, "frames_per_second", lambda embed, images: 1.0 + ("Onnx" in str(embed)))
    assert isinstance(load_embedder(TINY, "cpu", EmbedChoice()), OnnxClipEmbedder)  # measured anew: ONNX wins
