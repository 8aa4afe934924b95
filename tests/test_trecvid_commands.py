"""`mmsearch eval` and `mmsearch run` through Typer's CliRunner, on a local app the commands register into."""

from __future__ import annotations

import json
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
from pytest import approx
from typer.testing import CliRunner

from mmsearch.cli.trecvid import register
from mmsearch.errors import IndexNotFound
from mmsearch.types import MediaKind, SegmentHit, SegmentKind

DATA = Path(__file__).parent / "data" / "trecvid"
runner = CliRunner()


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("COLUMNS", "120")  # rich's table width, for stable output
    monkeypatch.delenv("MMSEARCH_INDEX", raising=False)
    cli = typer.Typer()
    register(cli)
    return cli


def eval_args(*extra: str) -> list[str]:
    return ["eval", "--qrels", str(DATA / "qrels.txt"), "--run", str(DATA / "run.txt"), *extra]


def table_rows(output: str) -> dict[str, list[str]]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
        if cells and cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


def test_eval_table(app: typer.Typer) -> None:
    result = runner.invoke(app, eval_args())
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    # Hand-derived in test_trecvid_xinfap (topic 1: one stratum; topic 2: two strata sampled 100% / 50%).
    assert rows["topic"] == ["infAP", "infNDCG", "iP10", "iP100", "inum_rel", "num_ret"]
    assert rows["1"] == ["0.8333", "0.9197", "0.2000", "0.0200", "2.0000", "5"]
    assert rows["2"] == ["0.8518", "0.8212", "0.2500", "0.0250", "3.0000", "6"]
    assert rows["all"] == ["0.8426", "0.8705", "0.2250", "0.0225", "5.0000", "11"]


def test_eval_json(app: typer.Typer) -> None:
    result = runner.invoke(app, eval_args("--json", "--max-results", "4"))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"infAP", "infNDCG", "per_topic"}
    assert set(data["per_topic"]) == {"1", "2"}
    # max 4 cuts topic 1 after its 4th shot (d, not relevant, is dropped) and topic 2 after zz.
    assert round(data["per_topic"]["1"]["infAP"], 4) == 0.8333
    assert data["per_topic"]["1"]["iP4"] == approx(3 * (2 + 1e-5) / (3 + 3e-5) / 4)
    assert data["infAP"] == approx((data["per_topic"]["1"]["infAP"] + data["per_topic"]["2"]["infAP"]) / 2)
    assert data["max_results"] == 4
    assert data["totals"]["num_ret"] == 8
    # iP@10/100/1000 are reported whatever the cut; past the cut, precision is inferred relevant / k.
    for scores in (data["means"], *data["per_topic"].values()):
        assert {"iP10", "iP100", "iP1000", "iP4"} <= set(scores)
    assert data["per_topic"]["1"]["iP1000"] == approx(data["per_topic"]["1"]["inum_rel_ret"] / 1000)
    assert data["per_topic"]["1"]["inum_rel"] == approx(2.0)


def test_eval_missing_file_exits_2(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--qrels", str(tmp_path / "none.txt"), "--run", str(DATA / "run.txt")])
    assert result.exit_code == 2
    assert "Invalid value for '--qrels'" in result.output


def test_eval_malformed_file_raises_domain_error(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "qrels.txt"
    bad.write_text("1 0 shot1_1 1\n")
    result = runner.invoke(app, ["eval", "--qrels", str(bad), "--run", str(DATA / "run.txt")])
    # One line `error: ...` and exit code 2, never a traceback.
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "error: " in result.output and "expected 5 fields" in result.output
    assert "Traceback" not in result.output


class FakeCatalog:
    """What `run` reads of the index's catalog: its files, to check them against the msb."""

    paths = {"/m/00017.mp4": MediaKind.VIDEO, "/m/00042.mp4": MediaKind.VIDEO, "/m/photo.jpg": MediaKind.IMAGE}

    def files(self) -> list[types.SimpleNamespace]:
        return [types.SimpleNamespace(path=p, kind=k) for p, k in self.paths.items()]


class FakeSearcher:
    opened: list[Path] = []
    queries: list[tuple[str, int]] = []
    catalog = FakeCatalog()
    closed = 0

    @classmethod
    def open(cls, index: Path) -> FakeSearcher:
        if index.name == "missing":
            raise IndexNotFound(f"no index at {index}")
        cls.opened.append(index)
        return cls()

    def close(self) -> None:
        FakeSearcher.closed += 1

    def search_segments(self, text: str, k: int, kinds: frozenset[SegmentKind] | None = None) -> list[SegmentHit]:
        FakeSearcher.queries.append((text, k))

        def hit(path: str, start: float | None, score: float) -> SegmentHit:
            end = None if start is None else start + 0.5
            return SegmentHit(0, path, SegmentKind.FRAME, start, end, score)

        if "drone" in text:
            return [hit("/m/00017.mp4", 6.0, 0.7), hit("/m/00042.mp4", 70.0, 0.9), hit("/m/00017.mp4", 0.5, 0.3)]
        return [hit("/m/00017.mp4", 13.0, 0.4), hit("/m/photo.jpg", None, 0.95)]


@pytest.fixture
def fake_search(monkeypatch: pytest.MonkeyPatch) -> type[FakeSearcher]:
    module = types.ModuleType("mmsearch.search.searcher")
    module.Searcher = FakeSearcher  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mmsearch.search.searcher", module)
    FakeSearcher.opened, FakeSearcher.queries, FakeSearcher.closed = [], [], 0
    return FakeSearcher


def run_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--topics",
        str(DATA / "topics.txt"),
        "--msb",
        str(DATA / "msb_v3c"),
        "--out",
        str(tmp_path / "run.out"),
        *extra,
    ]


def test_run_writes_trec_run(app: typer.Typer, fake_search: type[FakeSearcher], tmp_path: Path) -> None:
    result = runner.invoke(
        app, run_args(tmp_path, "--index", str(tmp_path / "idx"), "--run-id", "mm1", "--max-results", "2")
    )
    assert result.exit_code == 0, result.output
    assert fake_search.opened == [tmp_path / "idx"]
    # 10 segments per shot by default.
    assert fake_search.queries == [
        ("Find shots of a drone flying over a river", 20),
        ("Find shots of a person playing drums indoors", 20),
    ]
    assert (tmp_path / "run.out").read_text().splitlines() == [
        "611 Q0 shot00042_2 1 0.9 mm1",
        "611 Q0 shot00017_2 2 0.7 mm1",
        "612 Q0 shot00017_3 1 0.4 mm1",
    ]
    assert "wrote 3 shots for 2 topics" in result.output
    assert fake_search.closed == 1


def test_run_writes_avs_xml_with_index_from_env(
    app: typer.Typer, fake_search: type[FakeSearcher], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMSEARCH_INDEX", str(tmp_path / "env-idx"))
    result = runner.invoke(app, run_args(tmp_path, "--format", "trecvid-xml", "--pid", "MMS", "--per-topic-k", "7"))
    assert result.exit_code == 0, result.output
    assert fake_search.opened == [tmp_path / "env-idx"]
    assert {k for _, k in fake_search.queries} == {7}
    run = ET.parse(tmp_path / "run.out").getroot().find("videoAdhocSearchRunResult")
    assert run is not None and run.get("pid") == "MMS"
    items = {t.get("tNum"): [i.get("shotId") for i in t] for t in run}
    assert items == {"611": ["shot00042_2", "shot00017_2", "shot00017_1"], "612": ["shot00017_3"]}


def test_run_errors(app: typer.Typer, fake_search: type[FakeSearcher], tmp_path: Path) -> None:
    missing_index = runner.invoke(app, run_args(tmp_path))
    assert missing_index.exit_code == 2
    assert "--index" in missing_index.output
    not_found = runner.invoke(app, run_args(tmp_path, "--index", str(tmp_path / "missing")))
    assert not_found.exit_code == 2 and "error: no index at" in not_found.output
    bad_topics = tmp_path / "topics.txt"
    bad_topics.write_text("611\n")
    args = run_args(tmp_path, "--index", str(tmp_path / "idx"))
    args[args.index("--topics") + 1] = str(bad_topics)
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "has no text" in result.output
    assert fake_search.opened == []  # bad inputs fail before the index is opened


def test_run_refuses_an_index_without_any_msb_video(
    app: typer.Typer, fake_search: type[FakeSearcher], tmp_path: Path
) -> None:
    msb = tmp_path / "msb.txt"
    msb.write_text("shotother_1 0 10\n")
    args = run_args(tmp_path, "--index", str(tmp_path / "idx"))
    args[args.index("--msb") + 1] = str(msb)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error: the index holds no video of the msb" in result.output
    assert fake_search.queries == []  # refused before searching
    assert not (tmp_path / "run.out").exists()


def test_run_refuses_to_write_an_empty_run(app: typer.Typer, fake_search: type[FakeSearcher], tmp_path: Path) -> None:
    msb = tmp_path / "msb.txt"
    msb.write_text("shot00017_1 100 110\n")  # an indexed video, but no hit falls in its only shot
    args = run_args(tmp_path, "--index", str(tmp_path / "idx"))
    args[args.index("--msb") + 1] = str(msb)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "no hit of any topic fell in a shot" in result.output
    assert not (tmp_path / "run.out").exists()


def test_run_renumbers_topics(app: typer.Typer, fake_search: type[FakeSearcher], tmp_path: Path) -> None:
    args = run_args(tmp_path, "--index", str(tmp_path / "idx"), "--max-results", "1", "--topic-offset", "1000")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in (tmp_path / "run.out").read_text().splitlines()] == ["1611", "1612"]


def test_run_avs_attributes_are_settable(app: typer.Typer, fake_search: type[FakeSearcher], tmp_path: Path) -> None:
    extra = ("--format", "trecvid-xml", "--task", "M", "--novelty", "C", "--algo", "clip", "--class", "M")
    result = runner.invoke(app, run_args(tmp_path, "--index", str(tmp_path / "idx"), *extra, "--tr-type", "A"))
    assert result.exit_code == 0, result.output
    text = (tmp_path / "run.out").read_text()
    assert "projects/tv2023/dtds/videoAdhocSearchResults.dtd" in text
    run = ET.fromstring(text).find("videoAdhocSearchRunResult")
    assert run is not None
    assert dict(run.attrib) == {
        "trType": "A", "class": "M", "task": "M", "novelty": "C", "algo": "clip",
        "pid": "mmsearch", "priority": "1", "desc": "mmsearch automatic run",
    }  # fmt: skip
    bad = runner.invoke(
        app, run_args(tmp_path, "--index", str(tmp_path / "idx"), "--format", "trecvid-xml", "--task", "main")
    )
    assert bad.exit_code == 2 and "task must be one capital letter" in bad.output
