"""Issue 23's CLI edges of `index` and `check`: an index folder that cannot be created, an empty index pinning a
model, a file that vanishes while it is indexed, and `check` counting what `info` counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app as cli
from mmsearch.ingest.runner import IngestOptions, SilentReporter, run_ingest
from mmsearch.testing.media import Shot, make_image, make_video

runner = CliRunner()


def mm(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    make_image(folder / "a.png", "red")
    return folder


# -- 12. an index folder that cannot be created ---------------------------------------------------------------


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_an_index_folder_that_cannot_be_created_is_one_line_exit_2(media: Path, tmp_path: Path, where: str) -> None:
    (tmp_path / "afile").write_text("not a folder")
    index = tmp_path / "afile" / "sub" if where == "under-a-file" else Path("/proc/mmsearch-x/idx")
    code, _, err = mm("index", str(media), "--index", str(index), "--model", "test:hash", "--no-asr")
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and errors[0].startswith("error: cannot create or write the index directory"), err
    assert "Traceback" not in err


# -- 14. an index with no files takes the model of the next run -------------------------------------------------


def test_an_index_without_files_takes_the_next_runs_model(media: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    code, _, err = mm("index", str(media), "--index", str(index), "--model", "test:hash", "--no-asr", "--no-ocr")
    assert code == 0, err
    code, _, err = mm("remove", str(media), "--index", str(index))
    assert code == 0, err
    other = "random:mmsearch-tiny"
    code, _, err = mm("index", str(media), "--index", str(index), "--model", other, "--no-asr", "--no-ocr")
    assert code == 0, err
    code, out, _ = mm("info", "--index", str(index), "--json")
    info = json.loads(out)
    assert info["model"] == other and info["files"] == 1
    assert mm("check", "--index", str(index))[0] == 0


def test_a_model_mismatch_names_the_index_command(media: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    assert mm("index", str(media), "--index", str(index), "--model", "test:hash", "--no-asr", "--no-ocr")[0] == 0
    code, _, err = mm("index", str(media), "--index", str(index), "--model", "random:mmsearch-tiny", "--no-asr")
    assert code == 2 and "built with model 'test:hash'" in err
    assert "`mmsearch index` without --model" in err and "query without" not in err, err


# -- 15. a file that vanishes while it is indexed -----------------------------------------------------------------


class DeletesAfterPlanning(SilentReporter):
    """Deletes a file once the run has planned (hashed) it, before any worker decodes it."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim
        self.notes: list[tuple[str, str]] = []

    def planned(self, files: int, media_seconds: float) -> None:
        self.victim.unlink()

    def note(self, path: str, message: str) -> None:
        self.notes.append((path, message))


def test_a_file_deleted_before_decoding_is_skipped_not_remembered_as_failed(media: Path, tmp_path: Path) -> None:
    video = make_video(media / "v.mp4", [Shot("blue", 2)], audio=False).path
    kept = video.read_bytes()
    index = tmp_path / "index"
    options = IngestOptions(paths=(media,), index_dir=index, model="test:hash", asr=None)
    reporter = DeletesAfterPlanning(video)
    summary = run_ingest(options, reporter=reporter)
    assert summary.failed == [], summary.failed
    assert [(Path(p).name, "vanished" in m) for p, m in reporter.notes] == [("v.mp4", True)]
    video.write_bytes(kept)  # it comes back, the same bytes
    again = run_ingest(options)
    assert again.failed == [] and again.files == 2  # indexed now, not "unchanged, not retried"


# -- 16. check counts segments per kind and vectors per space ------------------------------------------------------


def test_check_counts_what_info_counts(media: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    code, _, err = mm("index", str(media), "--index", str(index), "--model", "test:hash", "--no-asr")
    assert code == 0, err
    info = json.loads(mm("info", "--index", str(index), "--json")[1])
    report = json.loads(mm("check", "--index", str(index), "--json")[1])
    assert report["segments"] == sum(info["segments"].values())
    assert report["segment_kinds"] == {k: n for k, n in info["segments"].items() if n}
    assert report["space_vectors"] == {name: space["vectors"] for name, space in info["spaces"].items()}
    out = mm("check", "--index", str(index))[1]
    assert f"{report['segments']} segment(s) (" in out and "vectors clip" in out, out
