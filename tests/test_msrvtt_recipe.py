"""benchmarks/msrvtt.py up to the point where MSR-VTT data and CLIP weights are needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
FIXTURE = Path(__file__).parent / "data" / "msrvtt" / "MSRVTT_JSFUSION_test_3.csv"


def _load() -> object:
    spec = importlib.util.spec_from_file_location("bench_msrvtt", BENCHMARKS / "msrvtt.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


msrvtt = _load()

VIDEOS = ["v1", "v2", "v3", "v4", "v5", "v6"]
TRUTH = ["v1", "v2", "v3", "v4"]
SIM = np.array(
    [
        [0.9, 0.1, 0.2, 0.3, 0.4, 0.0],  # v1 first: rank 1
        [0.5, 0.4, 0.6, 0.1, 0.0, 0.0],  # v1 and v3 above v2: rank 3
        [0.1, 0.1, 0.2, 0.2, 0.1, 0.1],  # v3 ties v4 at the top; the larger id goes first: rank 2
        [0.9, 0.8, 0.7, 0.1, 0.6, 0.5],  # v4 last of six: rank 6
    ],
    dtype=np.float32,
)


def test_ranks_by_hand() -> None:
    assert msrvtt.ranks_of_truth(SIM, VIDEOS, TRUTH) == [1, 3, 2, 6]


def test_metrics_by_hand() -> None:
    # R@1 = 1/4, R@5 = 3/4, R@10 = 4/4; MedR = median(1, 2, 3, 6) = 2.5; MeanR = 12/4.
    # ir_measures agrees with the tie rule: were v3 ranked before v4, R@1 would be 50.
    metrics = msrvtt.retrieval_metrics(SIM, VIDEOS, TRUTH)
    assert metrics == {"R@1": 25.0, "R@5": 75.0, "R@10": 100.0, "MedR": 2.5, "MeanR": 3.0}


def test_metrics_reject_a_misshapen_matrix() -> None:
    with pytest.raises(ValueError, match="expected"):
        msrvtt.retrieval_metrics(SIM[:3], VIDEOS, TRUTH)


def test_read_split_fixture() -> None:
    pairs = msrvtt.read_split(FIXTURE)
    assert [(p.key, p.video_id) for p in pairs] == [("ret0", "video7010"), ("ret1", "video7011"), ("ret2", "video7012")]
    assert pairs[0].sentence == "a girl wearing red top and black trouser is putting a sweater on a dog"
    assert pairs[2].sentence == "people dance, then a woman sings"  # quoted field with a comma


def test_read_split_wrong_header(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,caption\n1,a dog\n")
    with pytest.raises(ValueError, match="missing columns"):
        msrvtt.read_split(bad)


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert msrvtt.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err


def test_missing_split_says_what_to_download(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(capsys, ["--csv", str(tmp_path / "none.csv"), "--videos", str(tmp_path)])
    assert "MSRVTT_JSFUSION_test.csv" in err and "--csv" in err


def test_missing_videos_say_what_to_download(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "video7010.mp4").touch()
    err = _one_line_error(capsys, ["--csv", str(FIXTURE), "--videos", str(tmp_path)])
    assert "video video7011" in err and "--videos" in err


def test_missing_weights_say_what_to_download(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in (7010, 7011, 7012):
        (tmp_path / f"video{n}.mp4").touch()
    args = ["--csv", str(FIXTURE), "--videos", str(tmp_path), "--out", str(tmp_path / "out.json")]
    err = _one_line_error(capsys, [*args, "--model", f"ViT-B-32:{tmp_path / 'missing.bin'}"])
    assert "open_clip_pytorch_model.bin" in err and "--model ViT-B-32-quickgelu:" in err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.slow
def test_whole_recipe_on_stand_in_videos(tmp_path: Path, media_tools: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real code path on three generated clips named as MSR-VTT names them, with the test embedder."""
    import json

    from mmsearch.testing.media import Shot, make_video

    for n, colour in ((7010, "red"), (7011, "blue"), (7012, "lime")):
        make_video(tmp_path / f"video{n}.mp4", [Shot(colour, 1.0), Shot("testsrc", 1.0)], audio=False)
    out, cache = tmp_path / "msrvtt.json", tmp_path / "cache" / "videos"
    args = ["--csv", str(FIXTURE), "--videos", str(tmp_path), "--model", "test:hash", "--out", str(out)]
    assert msrvtt.main([*args, "--cache", str(cache)]) == 0
    result = json.loads(out.read_text())
    assert (result["sentences"], result["videos"]) == (3, 3)
    assert 0 <= result["R@1"] <= result["R@5"] == result["R@10"] == 100.0  # 3 videos: always in the top 5
    assert 1 <= result["MedR"] <= 3 and result["published"]["R@1"] == 31.2
    matrix = np.load(cache.with_suffix(".npy"))
    assert matrix.shape == (3, 64) and np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    # A second run scores from the cache (decoding again would fail) and gives the same numbers.
    monkeypatch.setattr(msrvtt, "embed_video", lambda *a: pytest.fail("cache not used"))
    assert msrvtt.main([*args, "--cache", str(cache)]) == 0
    assert json.loads(out.read_text()) == result


REAL_MSRVTT = Path(__file__).resolve().parents[1].parent / "shared" / "trecvid-real" / "msrvtt"


@pytest.mark.skipif(not REAL_MSRVTT.is_dir(), reason="../shared/trecvid-real is not present")
def test_read_split_real_semicolon_crlf_and_comma_forms() -> None:
    semicolon = msrvtt.read_split(REAL_MSRVTT / "MSRVTT_JSFUSION_test.semicolon-crlf.csv")
    comma = msrvtt.read_split(REAL_MSRVTT / "MSRVTT_JSFUSION_test.comma-derived.csv")
    assert semicolon == comma
    assert len(semicolon) == 1000 and len({p.video_id for p in semicolon}) == 1000
    assert semicolon[0] == msrvtt.Pair("ret0", "video9770", "a person is connecting something to system")
    assert not any("\r" in p.sentence or ";" in p.video_id for p in semicolon)
