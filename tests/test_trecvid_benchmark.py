"""The synthetic TRECVID collection (benchmarks/trecvid_synth.py) and its end-to-end driver (trecvid_e2e.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from pytest import approx

from mmsearch.testing.media import ShotSpan, SpeechSpan, VideoTruth
from mmsearch.trecvid.msb import load_msb
from mmsearch.trecvid.topics import load_topics

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/ is a folder of scripts, not a package: load one by path."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


synth = load_benchmark("trecvid_synth")

# Two videos with hand-placed shots and sentences; no media is rendered for these tests.
FOX = "the red fox jumped over the fence"
CHEF = "the chef sliced fresh salmon with a knife"
TRUTHS = [
    VideoTruth(
        Path("/m/00001.mp4"),
        6.0,
        cuts=(2.0, 4.0),
        shots=(ShotSpan(0.0, 2.0, "red"), ShotSpan(2.0, 4.0, "testsrc"), ShotSpan(4.0, 6.0, "blue")),
        utterances=(SpeechSpan(1.5, 3.0, FOX),),
    ),
    VideoTruth(
        Path("/m/00002.mp4"),
        4.0,
        cuts=(1.0,),
        shots=(ShotSpan(0.0, 1.0, "red"), ShotSpan(1.0, 4.0, "mandelbrot")),
        utterances=(SpeechSpan(1.2, 2.5, CHEF), SpeechSpan(2.6, 3.5, FOX)),
    ),
]


def test_msb_shot_ids_follow_time_order() -> None:
    msb = synth.build_msb(TRUTHS)
    assert [s.shot_id for s in msb.shots("00001")] == ["shot00001_1", "shot00001_2", "shot00001_3"]
    assert msb.shot_for("00002", 1.5).shot_id == "shot00002_2"


def test_speech_topics_relevance_is_every_shot_a_sentence_overlaps() -> None:
    import random

    msb = synth.build_msb(TRUTHS)
    topics = synth.speech_topics(TRUTHS, msb, 5, random.Random(0), 1001)
    by_origin = {t.origin: t for t in topics}
    assert len(topics) == 2  # two distinct sentences, however many were asked for
    # FOX: 1.5-3.0 s of video 1 (shots 1 and 2) and 2.6-3.5 s of video 2 (shot 2).
    assert by_origin[FOX].relevant == ("shot00001_1", "shot00001_2", "shot00002_2")
    assert by_origin[CHEF].relevant == ("shot00002_2",)
    assert [t.kind for t in topics] == ["verbatim", "keywords"]
    assert [t.num for t in topics] == ["1001", "1002"]


def test_speech_topic_text_kinds() -> None:
    import random

    rng = random.Random(3)
    assert synth.speech_topic_text(CHEF, "verbatim", rng) == CHEF
    assert synth.speech_topic_text(CHEF, "keywords", rng) == "chef sliced fresh salmon knife"
    partial = synth.speech_topic_text(CHEF, "partial", rng).split()
    assert len(partial) == 2 and set(partial) <= {"chef", "sliced", "fresh", "salmon", "knife"}
    with pytest.raises(ValueError, match="unknown speech topic kind"):
        synth.speech_topic_text(CHEF, "paraphrase", rng)


def test_visual_topics_judge_the_shots_showing_the_source() -> None:
    import random

    msb = synth.build_msb(TRUTHS)
    topics = synth.visual_topics(TRUTHS, msb, 10, random.Random(0), 2001)
    by_origin = {t.origin: t for t in topics}
    assert set(by_origin) == {"red", "testsrc", "blue", "mandelbrot"}
    assert by_origin["red"].relevant == ("shot00001_1", "shot00002_1")
    assert by_origin["red"].text == "a plain red screen"
    assert all(t.kind == "visual" for t in topics)


def test_stratified_qrels_strata_and_sampling() -> None:
    shots = [f"shot00001_{i}" for i in range(1, 21)]
    topic = synth.SynthTopic("1001", "verbatim", FOX, FOX, ("shot00001_3", "shot00001_7", "shot00001_11"))
    rows = synth.stratified_qrels(topic, shots, seed=5, strata=synth.Strata(0.5, 0.5))
    assert sorted(r[0] for r in rows) == sorted(shots)  # the pool is every shot, once
    strata = Counter(r[1] for r in rows)
    assert strata == {1: 10, 2: 10}
    assert all(j in (0, 1) for _, s, j in rows if s == 1)  # stratum 1 fully judged
    assert Counter(j == -1 for _, s, j in rows if s == 2) == {True: 5, False: 5}  # half of stratum 2 sampled
    # A judged shot's judgment is the truth.
    assert all(j == int(shot in topic.relevant) for shot, _, j in rows if j >= 0)
    # Deterministic by seed and topic; another seed draws another sample.
    assert synth.stratified_qrels(topic, shots, 5, synth.Strata()) == rows
    assert synth.stratified_qrels(topic, shots, 6, synth.Strata()) != rows
    with pytest.raises(ValueError, match="sample rate"):
        synth.Strata(0.5, 1.5)


def test_written_files_are_read_back_by_mmsearch(tmp_path: Path) -> None:
    msb = synth.build_msb(TRUTHS)
    synth.write_v3c_msb(msb, 25, tmp_path / "msb")
    v3c = load_msb(tmp_path / "msb")
    assert {s.shot_id: s.start for v in v3c.videos for s in v3c.shots(v)} == {
        s.shot_id: s.start for v in msb.videos for s in msb.shots(v)
    }
    topics = [
        synth.SynthTopic("1001", "verbatim", FOX, FOX, ()),
        synth.SynthTopic("1002", "visual", "a, b & c", "x", ()),
    ]
    (tmp_path / "t.xml").write_text(synth.topics_xml(topics))
    assert [(t.num, t.text) for t in load_topics(tmp_path / "t.xml")] == [("1001", FOX), ("1002", "a, b & c")]


@pytest.mark.slow
def test_end_to_end_through_the_cli(tmp_path: Path, asr_model_dir: Path, media_tools: None) -> None:
    e2e = load_benchmark("trecvid_e2e")
    out = tmp_path / "out"
    args = ["--out", str(out), "--videos", "2", "--sentences", "2", "--speech-topics", "4", "--visual-topics", "2"]
    report = e2e.main([*args, "--model", "test:hash", "--asr-model", str(asr_model_dir), "--max-results", "50"])
    collection = json.loads((out / "work" / "collection" / "collection.json").read_text())
    topics = {t["num"]: t for t in collection["topics"]}
    assert len(topics) == 6 and [s["exit_code"] for s in report["steps"]] == [0] * 6
    sampled = json.loads((out / "eval.json").read_text())
    full = json.loads((out / "eval_full.json").read_text())
    for result in (sampled, full):
        # Every topic was run and judged; the test embedder puts at least one segment in every topic's list.
        assert set(result["per_topic"]) == set(topics)
        assert all(0.0 <= s["infAP"] <= 1.0 and s["infNDCG"] >= 0.0 for s in result["per_topic"].values())
        assert result["infAP"] == approx(sum(s["infAP"] for s in result["per_topic"].values()) / len(topics))
    # Inferred NDCG may pass 1 on a sample (its ideal DCG is estimated too); on full judgments it is NDCG.
    assert all(s["infNDCG"] <= 1.0 + 1e-9 for s in full["per_topic"].values())
    # A sentence spoken verbatim is found through its transcript.
    verbatim = [n for n, t in topics.items() if t["kind"] == "verbatim"]
    assert verbatim and all(full["per_topic"][n]["infAP"] > 0 for n in verbatim)
    # With every shot judged in one stratum, inferred AP is AP (up to sample_eval's 1e-5 smoothing).
    ap = report["ir_measures_full_judgments"]["per_topic"]
    assert all(full["per_topic"][n]["infAP"] == approx(ap[n]["AP"], abs=1e-3) for n in topics)
    # Both run formats hold the same ranking, at most max results per topic.
    trec = [line.split() for line in (out / "run.txt").read_text().splitlines()]
    assert max(Counter(f[0] for f in trec).values()) <= 50
    root = ET.parse(out / "run.xml").getroot()
    xml_items = [(t.get("tNum"), i.get("shotId")) for t in root.iter("videoAdhocSearchTopicResult") for i in t]
    assert xml_items == [(f[0], f[2]) for f in trec]
    assert (out / "trecvid_e2e.png").read_bytes()[:4] == b"\x89PNG"
