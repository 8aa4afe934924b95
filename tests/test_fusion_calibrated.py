"""Calibrated fusion on hand-made channel score lists: evidence against each channel's background, the floor,
what a noise channel can and cannot do, the meaning and order of the score, and merging into moments."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from mmsearch.search.calibration import EVIDENCE_CAP, MAD_TO_SIGMA, TAIL_Z, Background, Calibration
from mmsearch.search.channels import Candidate, Evidence
from mmsearch.search.fusion import CALIBRATED_FLOOR, fuse, to_moments
from mmsearch.types import SegmentHit, SegmentKind

F, S = SegmentKind.FRAME, SegmentKind.SPEECH


def shot(i: int, score: float, path: str = "v.mp4", start: float | None = None, end: float | None = None) -> Candidate:
    start = float(10 * i) if start is None else start
    end = start + 2.0 if end is None else end
    return Candidate(("visual", i), 1, SegmentHit(i, path, F, start, end, score))


def said(i: int, score: float, path: str = "talk.mp4", start: float | None = None) -> Candidate:
    start = float(10 * i) if start is None else start
    return Candidate(("speech", i), 2, SegmentHit(100 + i, path, S, start, start + 2.0, score, f"words {i}"))


# Visual: cosines of near-top frames for probe queries sit around 0.20; speech: text-to-text cosines around 0.55.
rng = random.Random(7)
VISUAL_BG = Background.of([rng.gauss(0.20, 0.03) for _ in range(240)])
SPEECH_BG = Background.of([rng.gauss(0.55, 0.05) for _ in range(240)])
assert VISUAL_BG is not None and SPEECH_BG is not None
BACKGROUNDS = {"visual": VISUAL_BG, "speech": SPEECH_BG}


def test_background_is_median_and_robust_spread() -> None:
    normal = Background.of([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert normal is not None and normal.center == 5.5 and normal.spread == pytest.approx(2.5 * MAD_TO_SIGMA)
    bg = Background.of([1.0, 2.0, 3.0, 4.0, 100.0])  # a heavy upper tail widens the spread
    assert bg is not None and bg.center == 3.0 and bg.spread == pytest.approx((100.0 - 3.0) / TAIL_Z)
    assert bg.evidence(3.0) == 0.0 and bg.evidence(3.0 + bg.spread) == pytest.approx(1.0)
    assert bg.evidence(1e9) == EVIDENCE_CAP
    assert Background.of([]) is None
    flat = Background.of([0.0] * 10)  # e.g. BM25 finding nothing for any probe: a spread floor, not a division by 0
    assert flat is not None and flat.spread > 0


def test_noise_channel_top_item_stays_below_a_real_match_of_another_channel() -> None:
    """The image query of the issue: the exact visual match (0.998) and a speech channel with nothing relevant,
    whose best segment (0.68) is a lucky draw a little above what speech returns at its top for any query."""
    visual = [shot(1, 0.998), shot(2, 0.31), shot(3, 0.22), shot(4, 0.19)]
    speech = [said(1, 0.68), said(2, 0.58), said(3, 0.55), said(4, 0.51)]
    fused = fuse({"visual": visual, "speech": speech}, "calibrated", backgrounds=BACKGROUNDS)
    assert [f.candidate.key for f in fused] == [("visual", 1), ("visual", 2), ("speech", 1)]
    assert fused[0].score > 3 * fused[2].score
    # RRF, for contrast, scores both channels' first results the same.
    rrf = {f.candidate.key: f.score for f in fuse({"visual": visual, "speech": speech}, "rrf")}
    assert rrf[("visual", 1)] == rrf[("speech", 1)]


def test_candidates_below_the_floor_are_dropped_not_padded_in() -> None:
    visual = [shot(1, 0.998), shot(2, 0.31), shot(3, 0.22), shot(4, 0.19)]
    speech = [said(1, 0.57), said(2, 0.56), said(3, 0.55)]
    fused = fuse({"visual": visual, "speech": speech}, "calibrated", backgrounds=BACKGROUNDS)
    # 0.22 is about 0.7 spreads above the visual background, 0.57 about 0.4 above the speech one: below the floor.
    assert [f.candidate.key for f in fused] == [("visual", 1), ("visual", 2)]
    assert all(f.score >= CALIBRATED_FLOOR for f in fused)
    # Nothing stands out anywhere: nothing comes back, however many candidates the channels offered.
    nothing = fuse({"visual": visual[2:], "speech": speech[1:]}, "calibrated", backgrounds=BACKGROUNDS)
    assert nothing == []


def test_score_is_weighted_sum_of_positive_evidence_and_monotonic_in_rank() -> None:
    visual = [shot(1, 0.40), shot(2, 0.30)]
    speech = [said(1, 0.90), said(2, 0.70)]
    both = Candidate(("speech", 9), 2, SegmentHit(109, "talk.mp4", S, 90.0, 92.0, 0.75))
    fused = fuse(
        {"visual": visual, "speech": [*speech, both], "keyword": [both]},
        "calibrated",
        {"speech": 2.0},
        {**BACKGROUNDS},
    )
    by_key = {f.candidate.key: f for f in fused}
    e = SPEECH_BG.evidence(0.90)
    assert by_key[("speech", 1)].score == pytest.approx(2.0 * e)
    assert by_key[("speech", 1)].channels["speech"].evidence == pytest.approx(e)
    assert by_key[("visual", 1)].score == pytest.approx(VISUAL_BG.evidence(0.40))
    # keyword had no background: measured against its own (one-item) list, it adds nothing.
    assert by_key[("speech", 9)].channels["keyword"].evidence == pytest.approx(0.0)
    scores = [f.score for f in fused]
    assert scores == sorted(scores, reverse=True)


def test_explain_keeps_rank_raw_score_and_evidence() -> None:
    fused = fuse({"visual": [shot(1, 0.998)]}, "calibrated", backgrounds=BACKGROUNDS)
    channel = fused[0].channels["visual"]
    assert (channel.rank, channel.score) == (1, 0.998)
    assert channel.evidence == pytest.approx(VISUAL_BG.evidence(0.998))
    assert channel.to_json() == {"rank": 1, "score": 0.998, "evidence": round(channel.evidence, 4)}
    # rrf and weighted carry no evidence, and their JSON is as before.
    assert fuse({"visual": [shot(1, 0.9)]}, "rrf")[0].channels["visual"].to_json() == {"rank": 1, "score": 0.9}


def test_overlapping_and_touching_units_of_one_file_merge_into_one_moment() -> None:
    """Neighbouring windows of one shot and the speech over them are one moment; the top k are k moments."""
    units = [
        shot(1, 0.99, start=4.0, end=8.0),  # window of a long shot
        shot(2, 0.98, start=6.0, end=10.0),  # overlapping window of the same shot
        said(3, 0.75, path="v.mp4", start=10.0),  # speech touching the second window: 10-12 s
        shot(4, 0.97, path="w.mp4", start=4.0, end=8.0),  # same times, other file: its own moment
        shot(5, 0.96, start=20.0, end=22.0),  # same file, 8 s later: its own moment
        shot(6, 0.95, start=30.0, end=32.0),
    ]
    fused = fuse({"visual": units[:2] + units[3:], "speech": [units[2]]}, "calibrated", backgrounds=BACKGROUNDS)
    moments = to_moments(fused)
    assert [(m.path, m.start, m.end) for m in moments] == [
        ("v.mp4", 4.0, 12.0), ("w.mp4", 4.0, 8.0), ("v.mp4", 20.0, 22.0), ("v.mp4", 30.0, 32.0)
    ]  # fmt: skip
    assert moments[0].score == fused[0].score and len(moments[0].hits) == 3 and moments[0].text == "words 3"
    assert moments[0].channels["visual"].rank == 1
    scores = [m.score for m in moments]
    assert scores == sorted(scores, reverse=True)


def test_a_unit_bridging_two_moments_joins_them_and_images_never_merge() -> None:
    still = Candidate(("visual", 50), 3, SegmentHit(50, "p.png", SegmentKind.IMAGE, None, None, 0.9))
    ranked = [
        shot(1, 0.99, start=0.0, end=2.0),
        shot(2, 0.98, start=4.0, end=6.0),
        still,
        shot(3, 0.5, start=2.0, end=4.0),
    ]
    moments = to_moments(fuse({"visual": ranked}, "rrf"))
    assert [(m.path, m.start, m.end) for m in moments] == [("v.mp4", 0.0, 6.0), ("p.png", None, None)]


def test_walk_stops_at_the_limit_instead_of_chaining_through_a_video() -> None:
    # Best unit at 0-2 s, then another file, then every following shot of the first video, all touching.
    ranked = [
        shot(1, 0.99, start=0.0, end=2.0),
        shot(2, 0.9, path="b.mp4"),
        *(shot(10 + i, 0.5 - i / 100, start=2.0 + 2 * i, end=4.0 + 2 * i) for i in range(10)),
    ]
    moments = to_moments(fuse({"visual": ranked}, "rrf"), limit=2)
    assert [(m.path, m.start, m.end) for m in moments] == [("v.mp4", 0.0, 2.0), ("b.mp4", 20.0, 22.0)]


def test_calibration_is_measured_once_per_query_kind_and_cached_per_commit(tmp_path: Path) -> None:
    calls: list[str] = []
    vector = np.ones(4, np.float32) / 2

    def probes(kind: str, rng: random.Random) -> list[Evidence]:
        return [Evidence(visual=vector, speech=vector, text=f"probe {i}") for i in range(5)]

    def run(name: str, evidence: Evidence) -> list[Candidate]:
        calls.append(name)
        i = int((evidence.text or "0").split()[-1])
        return [] if name == "keyword" and i < 3 else [shot(i, 0.1 * i)]  # keyword finds nothing for 3 probes

    first = Calibration(tmp_path, 7, ("visual", "keyword"), probes, run)
    backgrounds = first.backgrounds("text")
    assert len(calls) == 10 and first.backgrounds("text") == backgrounds and len(calls) == 10
    assert backgrounds["visual"].center == pytest.approx(0.2) and backgrounds["visual"].samples == 5
    assert backgrounds["keyword"].center == 0.0  # probes it found nothing for count as 0
    assert (tmp_path / "calibration-00000007.json").is_file()
    again = Calibration(tmp_path, 7, ("visual", "keyword"), probes, run)  # another process, same commit
    assert again.backgrounds("text") == backgrounds and len(calls) == 10
    again.backgrounds("image")
    assert len(calls) == 20
    later = Calibration(tmp_path, 8, ("visual", "keyword"), probes, run)  # a new commit measures again
    later.backgrounds("text")
    assert len(calls) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibration-00000008.json"]
    # A channel added to the registry (by name, nothing else) is measured too: the cache is of the old set.
    with_new_channel = Calibration(tmp_path, 8, ("visual", "keyword", "speech"), probes, run)
    assert "speech" in with_new_channel.backgrounds("text") and len(calls) == 45
