"""Master shot reference: both file formats, the time → shot lookup and its edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch.errors import BadInput
from mmsearch.trecvid.msb import (
    MasterShotReference,
    Shot,
    load_msb,
    parse_time,
    probe_frame_rate,
    video_id_for_path,
    write_msb,
)

DATA = Path(__file__).parent / "data" / "trecvid"


@pytest.fixture
def v3c() -> MasterShotReference:
    return load_msb(DATA / "msb_v3c")


def test_v3c_directory(v3c: MasterShotReference) -> None:
    assert v3c.shots("00017") == (
        Shot("shot00017_1", "00017", 0.0, 4.96),
        Shot("shot00017_2", "00017", 5.0, 12.46),
        Shot("shot00017_3", "00017", 12.5, 14.96),
    )
    # HH:MM:SS.mmm times and a camel-case header.
    assert v3c.shots("00042") == (
        Shot("shot00042_1", "00042", 0.0, 59.96),
        Shot("shot00042_2", "00042", 60.0, 119.96),
    )
    assert len(v3c) == 5


def test_single_v3c_file_takes_video_id_from_name() -> None:
    msb = load_msb(DATA / "msb_v3c" / "00042.tsv")
    assert list(msb.videos) == ["00042"]
    assert msb.shots("00042")[1].shot_id == "shot00042_2"


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (-0.1, None),  # before the first shot
        (0.0, "shot00017_1"),
        (4.96, "shot00017_1"),  # the end time is the last frame's time
        (4.98, "shot00017_1"),  # between that frame and the next shot: still shot 1
        (5.0, "shot00017_2"),  # a boundary belongs to the shot that starts there
        (12.49, "shot00017_2"),
        (14.96, "shot00017_3"),  # the last shot ends at its end time, inclusive
        (14.97, None),
    ],
)
def test_shot_for_edges(v3c: MasterShotReference, t: float, expected: str | None) -> None:
    shot = v3c.shot_for("00017", t)
    assert (shot.shot_id if shot else None) == expected


def test_shot_for_unknown_video(v3c: MasterShotReference) -> None:
    assert v3c.shot_for("99999", 1.0) is None


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (4.5, 5.0, ["shot00017_1"]),  # [4.5, 5.0) stops where shot 2 starts
        (4.5, 5.5, ["shot00017_1", "shot00017_2"]),
        (1.0, 20.0, ["shot00017_1", "shot00017_2", "shot00017_3"]),
        (6.0, None, ["shot00017_2"]),  # an instant
        (-3.0, -1.0, []),
        (-3.0, 1.0, ["shot00017_1"]),
        (15.0, 16.0, []),
        (14.0, 16.0, ["shot00017_3"]),
    ],
)
def test_overlapping(v3c: MasterShotReference, start: float, end: float | None, expected: list[str]) -> None:
    assert [s.shot_id for s in v3c.overlapping("00017", start, end)] == expected


def test_simple_format_and_round_trip(tmp_path: Path, v3c: MasterShotReference) -> None:
    path = tmp_path / "msb.txt"
    path.write_text(
        "# shotID start end\n"
        "shotcam_a_2\t00:00:05.5 00:00:09.0\n"  # out of order, HH:MM:SS.mmm, id with an underscore
        "shotcam_a_1 0 5.4\n\n"
        "shot00017_1 0.0 4.96\n"
    )
    msb = load_msb(path)
    assert msb.shots("cam_a") == (Shot("shotcam_a_1", "cam_a", 0.0, 5.4), Shot("shotcam_a_2", "cam_a", 5.5, 9.0))
    assert msb.shot_for("00017", 3.0) == Shot("shot00017_1", "00017", 0.0, 4.96)
    out = tmp_path / "written.txt"
    write_msb(v3c, out)
    assert load_msb(out) == v3c
    assert out.read_text().splitlines()[1] == "shot00017_1\t0.0\t4.96"


def test_video_id_for_path() -> None:
    assert video_id_for_path("/x/00017.mp4") == "00017"
    assert video_id_for_path(Path("clips/cam_a.webm")) == "cam_a"


def test_parse_time() -> None:
    assert parse_time("12.5", "t") == 12.5
    assert parse_time("01:02.5", "t") == 62.5
    assert parse_time("01:00:01.250", "t") == 3601.25


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("clip_1 0 1\n", "not of the form shot<video>_<n>"),
        ("shotA_1 0\n", "expected 'shotID start end'"),
        ("shotA_1 2 1\n", "ends .* before it starts"),
        ("shotA_1 0 1\nshotA_1 1 2\n", "appears twice"),
        ("shotA_1 0 x\n", "not a time"),
        ("shotA_1 -1 2\n", "not a time"),
        ("# empty\n", "lists no shots"),
    ],
)
def test_bad_simple_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "msb.txt"
    path.write_text(content)
    with pytest.raises(BadInput, match=message):
        load_msb(path)


def test_bad_v3c_files(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="holds no <video>.tsv"):
        load_msb(tmp_path)
    (tmp_path / "v.tsv").write_text("startframe\tstart\tendframe\tend\n0\t0\t1\t1\n")
    with pytest.raises(BadInput, match="expected a header"):
        load_msb(tmp_path)
    (tmp_path / "v.tsv").write_text("startframe\tstarttime\tendframe\tendtime\n0\t0.0\t1\n")
    with pytest.raises(BadInput, match="expected 4 columns"):
        load_msb(tmp_path)
    with pytest.raises(BadInput, match="msb file not found"):
        load_msb(tmp_path / "missing.txt")


REAL_IACC = Path(__file__).resolve().parents[1].parent / "shared" / "trecvid-real" / "misc"


def test_iacc_frame_numbers_read_with_a_frame_rate(tmp_path: Path) -> None:
    msb_file = tmp_path / "39238.msb"
    msb_file.write_text("0 33\n34 68\n69 120\n")
    msb = load_msb(msb_file, fps=25.0)
    assert msb.shots("39238") == (
        Shot("shot39238_1", "39238", 0.0, 33 / 25),
        Shot("shot39238_2", "39238", 34 / 25, 68 / 25),
        Shot("shot39238_3", "39238", 69 / 25, 120 / 25),
    )
    # The frame rate may come from a lookup by video id (the CLI probes the indexed video).
    at_50 = load_msb(tmp_path, fps={"39238": 50.0}.get)
    assert at_50.shot_for("39238", 1.0) == Shot("shot39238_2", "39238", 34 / 50, 68 / 50)
    with pytest.raises(BadInput, match="frame rate of video 39238 is unknown"):
        load_msb(msb_file)


@pytest.mark.skipif(not (REAL_IACC / "skletz-iacc-39238.msb-frames.csv").is_file(), reason="shared/ not present")
def test_real_iacc_frame_pairs() -> None:
    msb = load_msb(REAL_IACC / "skletz-iacc-39238.msb-frames.csv", fps=29.97)
    (video,) = msb.videos
    shots = msb.shots(video)
    assert len(shots) == 873
    assert shots[-1].shot_id == f"shot{video}_873" and shots[-1].end == pytest.approx(13439 / 29.97)
    assert all(a.end < b.start for a, b in zip(shots, shots[1:], strict=False))


def test_probe_frame_rate_of_a_real_video(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed")
    video = tmp_path / "v.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=25", "-t", "1", str(video)], check=True
    )
    assert probe_frame_rate(video) == pytest.approx(25.0)
    assert probe_frame_rate(tmp_path / "missing.mp4") is None
