"""Against real NIST files in ../shared/trecvid-real (see its SOURCES.txt); skipped where shared/ is absent.

Eval must equal sample_eval.pl's printed output (4 decimals) on every case of cases.tsv, and the topic
readers must count the published topic files as topics.expected.tsv says.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mmsearch.errors import BadInput
from mmsearch.trecvid.topics import load_topics
from mmsearch.trecvid.xinfap import PRECISION_RANKS, evaluate

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "trecvid-real"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/trecvid-real is not present")

# Cut-offs of the two sample_eval.pl copies the expected outputs came from (cases.tsv, last column).
CUTOFFS = {"NIST TV16": PRECISION_RANKS, "ProbVideoRetrieval": (10, 100, 1000)}


def _cases() -> list[dict[str, str]]:
    if not REAL.is_dir():
        return []
    lines = (REAL / "cases" / "cases.tsv").read_text().splitlines()
    header = lines[0].lstrip("# ").split("\t")
    rows = [dict(zip(header, row, strict=True)) for row in csv.reader(lines[1:], delimiter="\t")]
    # The last column names the script copy whose output is <case>.expected.
    return [{**row, "copy": row[header[-1]]} for row in rows]


def _expected(path: Path) -> dict[tuple[str, str], float]:
    """`measure topic value` lines of sample_eval.pl (-q), topic `all` for the means and totals."""
    values: dict[tuple[str, str], float] = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 3:
            values[(fields[0], fields[1])] = float(fields[2])
    return values


def _cutoffs(copy: str) -> tuple[int, ...]:
    return next(ranks for name, ranks in CUTOFFS.items() if name in copy)


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["case"])
def test_eval_equals_sample_eval_pl(case: dict[str, str]) -> None:
    cases = REAL / "cases"
    max_results = int(case["max_results"])
    result = evaluate(cases / case["qrels"], cases / case["run"], max_results, _cutoffs(case["copy"]))
    expected = _expected(cases / f"{case['case']}.expected")
    ours = {(m, t): v for t, scores in result.per_topic.items() for m, v in scores.items()}
    ours.update({(m, "all"): v for m, v in result.means.items()})
    ours.update({(m, "all"): v for m, v in result.totals.items()})
    compared = 0
    for key, value in expected.items():
        assert key in ours, f"{case['case']}: sample_eval.pl prints {key}, we do not"
        assert round(ours[key], 4) == pytest.approx(value, abs=1e-9), f"{case['case']} {key}"
        compared += 1
    # Every topic and every "all" line of the script was compared, not a sample.
    assert compared == len(expected) > 50


def _expected_topics() -> list[list[str]]:
    if not REAL.is_dir():
        return []
    rows = (REAL / "topics" / "topics.expected.tsv").read_text().splitlines()[1:]
    return [row.split("\t") for row in rows if row.strip()]


@pytest.mark.parametrize("row", _expected_topics(), ids=lambda r: r[0])
def test_topic_files_read_as_published(row: list[str]) -> None:
    path = REAL / "topics" / row[0]
    if row[1] == "REJECT":
        with pytest.raises(BadInput, match="topic number"):
            load_topics(path)
        return
    topics = load_topics(path)
    assert len(topics) == int(row[1])
    assert (topics[0].num, topics[-1].num) == (row[2], row[4])
    assert topics[0].text.startswith(row[3]) and topics[-1].text.startswith(row[5])


def test_eval_detects_published_topic_numbers_against_nist_qrels(tmp_path: Path) -> None:
    """A run made from the published topic list (661-670) scores as the same run numbered 1661-1670."""
    cases = REAL / "cases"
    published = tmp_path / "godspeed_661.run"
    lines = (cases / "godspeed_tv21a.run").read_text().splitlines()
    published.write_text("".join(line[1:] + "\n" for line in lines))  # "1661 0 ..." -> "661 0 ..."
    shifted = evaluate(cases / "tv21a.qrels", published)
    original = evaluate(cases / "tv21a.qrels", cases / "godspeed_tv21a.run")
    assert shifted.topic_offset == 1000 and original.topic_offset == 0
    assert shifted.per_topic == original.per_topic and shifted.means == original.means
