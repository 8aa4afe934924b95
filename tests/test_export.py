"""Export to editing software, checked by real clients: melt renders the MLT project, the OpenTimelineIO adapters
read the EDL, FCPXML and FCP7 XML back; real footage from shared/media-real."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.errors import BadInput, MissingExtra, UsageError
from mmsearch.export.cuts import STILL_SECONDS, Cut, SourceKind, plan_cuts, probe_source
from mmsearch.export.formats import CSV_COLUMNS, FORMATS, check_available, export_format, render, timecode
from mmsearch.types import Moment, SegmentKind

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "media-real"
FRIDAY = REAL / "friday.mp4"  # 640x480, 30 fps, 6.2 s, with sound
TEARS = REAL / "tears-of-steel-battle-clip-medium.webm"  # 800x332, 24 fps, 70.5 s
CARS = REAL / "intel_car-detection.mp4"  # 768x432, 12.5 fps (not a SMPTE rate), 30.2 s
JFK = REAL / "jfk.flac"  # sound only
# dHash bits (of 64) that may differ between a source frame and the same frame after melt scaled and re-encoded
# it; measured 0-1 at the in-points, 1-4 one frame off, 7-31 a second or more off.
SAME_FRAME_BITS = 3

otio = pytest.importorskip("opentimelineio")


@pytest.fixture(scope="module")
def real() -> Path:
    if not FRIDAY.is_file():
        pytest.skip(f"real media not found at {REAL}")
    return REAL


def _moments() -> list[Moment]:
    return [
        Moment(str(FRIDAY), SegmentKind.FRAME, 1.0, 2.5, 0.9, None),
        Moment(str(TEARS), SegmentKind.SPEECH, 10.2, 12.0, 0.8, "we have to go now"),
        Moment(str(CARS), SegmentKind.FRAME, 5.0, 6.6, 0.7, None),
        Moment(str(FRIDAY), SegmentKind.OCR, 4.0, 5.0, 0.5, "FRIDAY"),
    ]


def _frame(path: Path, seconds: float) -> Image.Image:
    png = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", f"{seconds:.4f}", "-i", str(path), "-frames:v", "1", "-f", "image2pipe",
         "-vcodec", "png", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return Image.open(io.BytesIO(png)).convert("L")


def _dhash(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    return (pixels[:, 1:] > pixels[:, :-1]).flatten()


def _picture(frame: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The source's picture inside a rendered frame: melt fits it to the profile, keeping its aspect (bars)."""
    width, height = frame.size
    scale = min(width / size[0], height / size[1])
    w, h = size[0] * scale, size[1] * scale
    x, y = (width - w) / 2, (height - h) / 2
    return frame.crop((round(x), round(y), round(x + w), round(y + h)))


def _probe_frames(path: Path) -> tuple[int, Fraction]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames,avg_frame_rate", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.strip().split(",")  # fmt: skip
    return int(out[1]), Fraction(out[0])


@pytest.mark.slow
def test_melt_renders_the_mlt_export_cut_for_cut(real: Path, tmp_path: Path) -> None:
    if shutil.which("melt") is None:
        pytest.skip("melt is not installed (apt-get install melt)")
    cuts = plan_cuts(_moments(), handles=0.25)
    project = tmp_path / "edit.mlt"
    project.write_text(render(cuts, FORMATS["mlt"], "friday"))
    video = tmp_path / "edit.mp4"
    subprocess.run(
        ["melt", str(project), "-quiet", "-consumer", f"avformat:{video}", "vcodec=libx264", "preset=ultrafast",
         "acodec=aac"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    frames, rate = _probe_frames(video)
    assert rate == 30  # the first video's rate
    lengths = [round(c.count * rate / c.rate) for c in cuts]  # each cut in the timeline's frames
    assert abs(frames - sum(lengths)) <= len(cuts), (frames, lengths)
    position = 0
    for cut, length in zip(cuts, lengths, strict=True):
        rendered = _picture(_frame(video, (position + 0.5) / float(rate)), cut.source.size)
        source = _frame(cut.source.path, (cut.first + 0.5) / float(cut.rate))
        distance = int((_dhash(rendered) != _dhash(source)).sum())
        assert distance <= SAME_FRAME_BITS, (cut.source.path.name, cut.first, distance)
        position += length


@pytest.mark.parametrize("name", ["edl", "fcpxml", "xml"])
def test_interchange_formats_read_back_with_the_same_clips(real: Path, tmp_path: Path, name: str) -> None:
    fmt = FORMATS[name]
    cuts = plan_cuts(_moments(), handles=0.5)
    path = tmp_path / f"edit{fmt.suffix}"
    path.write_text(render(cuts, fmt, "friday"))
    timeline = otio.adapters.read_from_file(str(path), fmt.adapter, **({"rate": 30} if name == "edl" else {}))
    clips = list(timeline.find_clips())
    assert len(clips) == len(cuts)
    for clip, cut in zip(clips, cuts, strict=True):
        got = clip.source_range
        start = got.start_time.to_seconds()
        assert abs(start - cut.start) <= 1 / 24 + 1e-6, (clip.name, start, cut.start)  # one frame of the slowest
        assert abs(got.duration.to_seconds() - (cut.end - cut.start)) <= 1 / 12 + 1e-6, clip.name
        url = clip.media_reference.target_url
        assert otio.url_utils.filepath_from_url(url) == str(cut.source.path) or url == str(cut.source.path), url


def test_otio_keeps_each_source_rate_and_markers(real: Path) -> None:
    cuts = plan_cuts(_moments(), handles=1.0)
    timeline = otio.adapters.read_from_string(render(cuts, FORMATS["otio"], "friday"), "otio_json")
    clips = list(timeline.find_clips())
    assert [c.source_range.start_time.rate for c in clips] == [30, 24, 12.5, 30]
    assert clips[0].media_reference.target_url == FRIDAY.resolve().as_uri()
    assert clips[0].media_reference.available_range.duration.value == 184  # 6.166 s at 30 fps
    # handles: one second each side, clamped at the start of the file
    assert clips[0].source_range.start_time.value == 0 and clips[0].source_range.duration.value == 105  # 0 to 2.5 + 1 s
    marker = clips[1].markers[0]
    assert marker.name == "friday" and marker.comment == "we have to go now"
    assert marker.metadata["mmsearch"]["kind"] == "speech"
    assert abs(marker.marked_range.start_time.to_seconds() - 10.2) < 1 / 24


def test_sound_only_moments_go_on_an_audio_track_and_stills_last_a_set_time(real: Path, tmp_path: Path) -> None:
    still = tmp_path / "still.png"
    Image.new("RGB", (64, 48), "red").save(still)
    moments = [
        Moment(str(FRIDAY), SegmentKind.FRAME, 1.0, 2.0, 0.9, None),
        Moment(str(JFK), SegmentKind.SPEECH, 2.0, 4.0, 0.8, "ask not"),
        Moment(str(still), SegmentKind.IMAGE, None, None, 0.7, None),
    ]
    cuts = plan_cuts(moments)
    assert [c.source.kind for c in cuts] == [SourceKind.VIDEO, SourceKind.AUDIO, SourceKind.STILL]
    assert cuts[2].count == STILL_SECONDS * 30 and cuts[1].rate == 30  # counted in the timeline's frames
    timeline = otio.adapters.read_from_string(render(cuts, FORMATS["otio"], "q"), "otio_json")
    video, audio = timeline.tracks
    assert audio.kind == otio.schema.TrackKind.Audio
    assert [type(i).__name__ for i in video] == ["Clip", "Gap", "Clip"]
    assert [type(i).__name__ for i in audio] == ["Gap", "Clip", "Gap"]
    assert audio[1].media_reference.target_url.endswith("jfk.flac")


def test_csv_has_one_row_per_moment(real: Path) -> None:
    cuts = plan_cuts(_moments())
    rows = list(csv.DictReader(io.StringIO(render(cuts, FORMATS["csv"], "friday"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["path"] for r in rows] == [str(FRIDAY), str(TEARS), str(CARS), str(FRIDAY)]
    assert rows[1]["start"] == "10.167" and rows[1]["end"] == "12.000"  # snapped to the source's 24 fps frames
    assert rows[1]["timecode"] == "00:00:10:04" and rows[1]["kind"] == "speech"
    assert rows[1]["text"] == "we have to go now" and rows[1]["score"] == "0.8000"


def test_cuts_snap_to_frames_and_stay_inside_the_file(real: Path) -> None:
    source = probe_source(FRIDAY)
    assert source.rate == 30 and source.size == (640, 480) and source.frames == 184
    (cut,) = plan_cuts([Moment(str(FRIDAY), SegmentKind.FRAME, 5.5, 6.1, 1.0, None)], handles=2.0)
    assert isinstance(cut, Cut) and cut.first == 105 and cut.first + cut.count == 184  # clamped at the end


def test_bad_input_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown export format 'avid'"):
        export_format("avid")
    with pytest.raises(BadInput, match="handles"):
        plan_cuts([], handles=-1)
    missing = tmp_path / "gone.mp4"
    with pytest.raises(BadInput, match="cannot read"):
        plan_cuts([Moment(str(missing), SegmentKind.FRAME, 0.0, 1.0, 1.0, None)])


def test_a_missing_adapter_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "otio_fcp_adapter" else real_find(name, *a)
    )
    with pytest.raises(MissingExtra) as caught:
        check_available(FORMATS["xml"])
    assert str(caught.value) == "exporting xml needs otio_fcp_adapter: pip install 'mmsearch[fcp]'"
    check_available(FORMATS["csv"])  # written here: nothing to install


def test_timecode() -> None:
    assert timecode(3725.5, 25) == "01:02:05:12"
    assert timecode(0.0, 30) == "00:00:00:00"
