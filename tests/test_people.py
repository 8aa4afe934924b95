"""People bookkeeping without models: incremental clustering with stable ids, names, merge, forget."""

from __future__ import annotations

import numpy as np
import pytest

from mmsearch.errors import PersonNotFound, UsageError
from mmsearch.index.catalog import Catalog
from mmsearch.index.people import FACE_DIM, FACE_SPACE, place
from mmsearch.types import MediaKind, Segment, SegmentKind


def unit(seed: int, near: np.ndarray | None = None, spread: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=FACE_DIM).astype(np.float32)
    if near is not None:
        v = near + spread * v / np.linalg.norm(v)
    return (v / np.linalg.norm(v)).astype(np.float32)


A, B = unit(1), unit(2)


def test_place_joins_nearest_within_threshold_and_numbers_new_people() -> None:
    a2, b2, c = unit(3, A, 0.2), unit(4, B, 0.2), unit(5)
    assert place(np.zeros((0, FACE_DIM)), [], np.stack([A, B, a2, c, b2]), 1) == [1, 2, 1, 3, 2]
    # Incremental: later tracks join the people already there, new ones count on from next_id.
    assert place(np.stack([A, B]), [7, 9], np.stack([b2, unit(6)]), 10) == [9, 10]


def add_faces(cat: Catalog, name: str, vectors: list[np.ndarray], start: float = 0.0, size: int = 60) -> list[int]:
    file_id = cat.add_file(cat.path.parent / name, MediaKind.VIDEO, 1, 1, f"sha-{name}", 60.0, False)
    segs = [Segment(SegmentKind.FACE, start + 5 * n, start + 5 * n + 4) for n in range(len(vectors))]
    ids = cat.add_segments(file_id, segs)
    cat.add_space_vectors(FACE_SPACE, ids, np.stack(vectors))
    cat.add_face_tracks([(i, size + n, b"jpeg%d" % i) for n, i in enumerate(ids)])
    return ids


@pytest.fixture
def cat(tmp_path):
    catalog = Catalog.open(tmp_path / "catalog.sqlite", create=True)
    yield catalog
    catalog.close()


def test_assign_is_incremental_and_ids_stay(cat: Catalog) -> None:
    first = add_faces(cat, "a.mp4", [A, unit(3, A, 0.2), B])
    placed = cat.assign_people()
    assert placed == {first[0]: 1, first[1]: 1, first[2]: 2}
    assert cat.assign_people() == {}  # nothing new: nothing moves
    second = add_faces(cat, "b.mp4", [unit(4, B, 0.25), unit(9)], size=100)
    assert cat.assign_people() == {second[0]: 2, second[1]: 3}
    people = {p.id: p for p in cat.people()}
    assert (people[1].tracks, people[1].files, people[1].seconds) == (2, 1, 8.0)
    assert (people[2].tracks, people[2].files) == (2, 2)
    # The representative crop is the largest face's.
    assert people[2].crop_segment == second[0]
    assert cat.face_crop(second[0]) == b"jpeg%d" % second[0]


def test_names_merge_and_lookup(cat: Catalog) -> None:
    add_faces(cat, "a.mp4", [A, B, unit(7)])
    cat.assign_people()
    assert cat.rename_person(1, "  Barack   Obama ").name == "Barack Obama"
    assert cat.person("barack obama").id == 1 and cat.person("2").id == 2
    with pytest.raises(UsageError, match="already named"):
        cat.rename_person(2, "BARACK OBAMA")
    with pytest.raises(UsageError):
        cat.rename_person(2, "42")
    with pytest.raises(PersonNotFound, match="no person 'Joe'"):
        cat.person("Joe")
    merged = cat.merge_people("Barack Obama", 3)
    assert (merged.id, merged.name, merged.tracks) == (1, "Barack Obama", 2)
    assert [p.id for p in cat.people()] == [1, 2]
    with pytest.raises(UsageError, match="itself"):
        cat.merge_people(1, "barack obama")


def test_forget_removes_segments_descriptors_crops_and_the_person(cat: Catalog) -> None:
    ids = add_faces(cat, "a.mp4", [A, B, unit(8, A, 0.1)])
    cat.assign_people()
    gone = cat.forget_person(1)
    assert set(gone.segment_ids) == {ids[0], ids[2]}
    assert [p.id for p in cat.people()] == [2]
    assert cat.segments_by_ids(ids).keys() == {ids[1]}
    assert cat.space_counts() == {FACE_SPACE: 1}
    assert cat.face_crop(ids[0]) is None and cat.face_crop(ids[1]) is not None
    # A new face of the forgotten person is a stranger: nothing of the old one is left to match it.
    again = add_faces(cat, "b.mp4", [unit(10, A, 0.1)])
    assert cat.assign_people() == {again[0]: 3}


def test_removed_files_take_unnamed_people_with_them(cat: Catalog) -> None:
    add_faces(cat, "a.mp4", [A, B])
    cat.assign_people()
    cat.rename_person(2, "Joe Biden")
    file_id = cat.files()[0].id
    cat.remove_file(file_id)
    cat.assign_people()
    assert [(p.id, p.name, p.tracks) for p in cat.people()] == [(2, "Joe Biden", 0)]
