"""The faces stage on real faces: videos composed from the portraits in ../shared/faces, decoded as ingest decodes
them (1 frame a second, 448 px), and still images. Spans are checked against the composition's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch.ingest.decode import iter_frames, load_image
from mmsearch.ingest.discover import probe
from mmsearch.ingest.faces import MIN_FACE, SAME_PERSON, DlibFaces, FaceTrack, FaceTracker, image_faces
from mmsearch.testing.faces import FACES_DIR, FaceVideo, Placement, Scene, compose_archive, compose_faces, photo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FACES_DIR.is_dir(), reason="needs ../shared/faces"),
]


@pytest.fixture(scope="module")
def engine() -> DlibFaces:
    try:
        return DlibFaces.load()
    except Exception as e:  # the faces extra not installed
        pytest.skip(f"faces models not installed: {e}")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FaceVideo]:
    return compose_archive(tmp_path_factory.mktemp("faces"))


def track_video(engine: DlibFaces, path: Path) -> tuple[list[FaceTrack], FaceTracker]:
    media = probe(path)
    tracker = FaceTracker(engine)
    for batch in iter_frames(media, 1.0):
        for frame, t in zip(batch.frames, batch.times, strict=True):
            tracker.add(frame, float(t), batch.interval)
    return tracker.finish(media.duration), tracker


def spans(tracks: list[FaceTrack]) -> list[tuple[float, float]]:
    return [(tr.start or 0.0, tr.end or 0.0) for tr in tracks]


def close(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) <= 1.0 and abs(a[1] - b[1]) <= 1.0


def test_one_person_still_and_panning_is_two_tracks_of_one_person(engine: DlibFaces, archive: dict) -> None:
    tracks, tracker = track_video(engine, archive["obama.mp4"].path)
    truth = archive["obama.mp4"].spans_of("obama")
    assert len(tracks) == 2, spans(tracks)
    assert all(close(s, t) for s, t in zip(spans(tracks), truth, strict=True)), (spans(tracks), truth)
    assert float(np.linalg.norm(tracks[0].descriptor - tracks[1].descriptor)) < SAME_PERSON
    # The pan moves the face every frame but it stays one track, described far fewer times than it was looked at.
    assert tracker.described < tracker.frames_read
    assert all(tr.crop.shape[2] == 3 and tr.size >= MIN_FACE for tr in tracks)


def test_two_people_and_a_cut_between_them_keep_apart(engine: DlibFaces, archive: dict) -> None:
    video = archive["pair.mp4"]
    tracks, _ = track_video(engine, video.path)
    assert len(tracks) == 4, spans(tracks)
    truth = [(s.start, s.end) for s in video.spans]
    assert all(any(close(got, t) for t in truth) for got in spans(tracks)), spans(tracks)
    # The first scene shows both: its two tracks are told apart by descriptor, not by time.
    first = [tr for tr in tracks if tr.start == 0.0]
    assert len(first) == 2
    d = float(np.linalg.norm(first[0].descriptor - first[1].descriptor))
    assert d > SAME_PERSON
    later = {round(tr.start or 0): tr for tr in tracks if tr.start}
    obama_late, biden_late = later[7], later[4]
    for early in first:
        to_obama = float(np.linalg.norm(early.descriptor - obama_late.descriptor))
        to_biden = float(np.linalg.norm(early.descriptor - biden_late.descriptor))
        assert min(to_obama, to_biden) < SAME_PERSON < max(to_obama, to_biden)


def test_no_one_on_screen_no_tracks(engine: DlibFaces, archive: dict) -> None:
    tracks, tracker = track_video(engine, archive["nobody.mp4"].path)
    assert tracks == []
    assert tracker.frames_read <= 2  # one per scene: unchanged frames are not looked at


def test_faces_under_the_minimum_are_skipped(engine: DlibFaces, tmp_path: Path) -> None:
    tiny = compose_faces(tmp_path / "tiny.mp4", [Scene(3.0, (Placement(photo("obama.jpg"), 90, 100, 100),))])
    tracks, tracker = track_video(engine, tiny.path)
    assert tracker.frames_read == 1
    assert tracks == []


def test_still_images_faces_largest_first(engine: DlibFaces, tmp_path: Path) -> None:
    one = load_image(photo("obama2.jpg"))
    faces = image_faces(engine, one)
    assert len(faces) == 1 and faces[0].start is None and faces[0].end is None
    left = Image.open(photo("biden2.jpg")).convert("RGB").resize((300, 300))
    right = Image.open(photo("obama.jpg")).convert("RGB").resize((200, 250))
    pair = Image.new("RGB", (560, 320), (90, 100, 112))
    pair.paste(left, (10, 10))
    pair.paste(right, (340, 40))
    pair.save(tmp_path / "pair.jpg")
    faces = image_faces(engine, load_image(tmp_path / "pair.jpg"))
    assert len(faces) == 2 and faces[0].size > faces[1].size
    assert float(np.linalg.norm(faces[0].descriptor - faces[1].descriptor)) > SAME_PERSON
    obama = image_faces(engine, load_image(photo("obama.jpg")))[0]
    assert float(np.linalg.norm(obama.descriptor - faces[1].descriptor)) < SAME_PERSON
