"""The query path's shortcuts give the answers of the long way: the text tower on the tokens up to end-of-text, the
in-memory segment table, one store search shared by the visual and speech channels, no CLIP tower for keyword-only
queries."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmsearch.index.catalog import Catalog
from mmsearch.models.clip import encode_text
from mmsearch.models.registry import load_embedder
from mmsearch.search.evidence import ChannelContext, Exclusion
from mmsearch.search.searcher import Query, Searcher
from mmsearch.search.segment_table import CatalogSegments, SegmentTable
from mmsearch.types import Segment, SegmentKind

TEXTS = ["a", "a dog barking", "red fox jumps over the fence at night", "word " * 100]  # the last fills 77 tokens


def _tower_lengths(model: Any) -> list[int]:
    """Sequence lengths the model's text transformer is run on, recorded from now on."""
    seen: list[int] = []
    model.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(args[0].shape[1]), with_kwargs=True
    )
    return seen


@pytest.mark.parametrize("arch", ["random:mmsearch-tiny", "random:ViT-B-32"])
def test_text_tower_on_tokens_up_to_end_of_text_equals_the_full_tower(arch: str) -> None:
    import torch

    model = load_embedder(arch, "cpu").model
    tokenizer = __import__("open_clip").get_tokenizer(arch.split(":")[1])
    seen = _tower_lengths(model)
    with torch.inference_mode():
        for text in TEXTS:
            tokens = tokenizer([text])
            full, cut = model.encode_text(tokens).numpy(), encode_text(model, tokens).numpy()
            assert np.allclose(full, cut, atol=1e-5), text
        batch = tokenizer(TEXTS[:3])
        assert np.allclose(model.encode_text(batch).numpy(), encode_text(model, batch).numpy(), atol=1e-5)
    # Per text: the full tower (77) then the cut one; the short texts ran on a few tokens only.
    cut_lengths = seen[1::2]
    assert cut_lengths[:3] == [3, 5, 10] and cut_lengths[3] == 77 and seen[-1] == 10


def test_a_tower_that_attends_both_ways_is_run_whole() -> None:
    import torch

    model = copy.deepcopy(load_embedder("random:mmsearch-tiny", "cpu").model)
    model.attn_mask = None  # no causal mask: padding tokens reach the pooled one, so nothing may be dropped
    tokens = __import__("open_clip").get_tokenizer("mmsearch-tiny")(["a dog"])
    seen = _tower_lengths(model)
    with torch.inference_mode():
        assert np.array_equal(model.encode_text(tokens).numpy(), encode_text(model, tokens).numpy())
    assert seen == [77, 77]


def _catalog(tmp_path: Path) -> tuple[Catalog, dict[str, list[int]]]:
    catalog = Catalog.open(tmp_path / "catalog.sqlite", create=True)
    from mmsearch.types import MediaKind

    ids: dict[str, list[int]] = {}
    catalog.begin()
    video = catalog.add_file(tmp_path / "talk.mp4", MediaKind.VIDEO, 1, 1, "a" * 64, 10.0, True)
    ids["talk"] = catalog.add_segments(
        video,
        [
            Segment(SegmentKind.FRAME, 0.0, 1.0),
            Segment(SegmentKind.SPEECH, 0.5, 2.5, "the red fox"),
            Segment(SegmentKind.FRAME, 1.0, 2.0),
            Segment(SegmentKind.OCR, 1.0, 3.0, "PLATFORM SEVEN"),
        ],
    )
    photo = catalog.add_file(tmp_path / "photo.jpg", MediaKind.IMAGE, 1, 1, "b" * 64, None, False)
    ids["photo"] = catalog.add_segments(photo, [Segment(SegmentKind.IMAGE, None, None)])
    catalog.commit()
    return catalog, ids


def test_segment_table_resolves_hits_as_the_catalog_does(tmp_path: Path) -> None:
    catalog, ids = _catalog(tmp_path)
    table = SegmentTable.build(catalog)
    frame0, speech, frame1, ocr = ids["talk"]
    (image,) = ids["photo"]
    order = [speech, 999, image, frame1, ocr, frame0]  # 999: not in the index (removed since), dropped
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    got = table.hits(order, scores, frozenset(SegmentKind))
    want = catalog.segments_by_ids([speech, image, frame1, ocr, frame0])
    assert [h.segment_id for _, h in got] == [speech, image, frame1, ocr, frame0]
    for file_id, hit in got:
        record = want[hit.segment_id]
        assert (file_id, hit.path, hit.kind, hit.start, hit.end, hit.text) == (
            record.file_id,
            record.path,
            record.kind,
            record.start,
            record.end,
            record.text,
        )
    assert [h.score for _, h in got] == pytest.approx([0.9, 0.7, 0.6, 0.5, 0.4])
    visual = table.hits(order, scores, frozenset({SegmentKind.FRAME, SegmentKind.IMAGE}), limit=2)
    assert [h.segment_id for _, h in visual] == [image, frame1]
    # The example's own span is dropped before the limit counts.
    talk_id = got[0][0]
    kept = table.hits(order, scores, frozenset({SegmentKind.FRAME}), Exclusion(talk_id, 1.0, 2.0), limit=1)
    assert [h.segment_id for _, h in kept] == [frame0]
    assert table.hits([], [], frozenset(SegmentKind)) == []
    # A one-query process asks the catalog instead, or reads paths from it (non-resident table): the same answers.
    _set_manifest(catalog, {"vectors_generation": "3", "vectors_checksum": "sha256:00"})
    cached = SegmentTable.open(catalog)  # builds and caches it: segments-00000003/
    assert (tmp_path / "segments-00000003" / "ids.npy").is_file()
    mapped = SegmentTable.cached(catalog, resident=False)
    assert mapped is not None and isinstance(mapped.ids, np.memmap)
    for other in (CatalogSegments(catalog), SegmentTable.build(catalog, resident=False), cached, mapped):
        for kinds in (
            frozenset(SegmentKind),
            frozenset({SegmentKind.FRAME, SegmentKind.IMAGE}),
            frozenset({SegmentKind.SPEECH}),
        ):
            for exclude in (None, Exclusion(talk_id, 1.0, 2.0)):
                for limit in (None, 1, 2):
                    assert other.hits(order, scores, kinds, exclude, limit) == table.hits(
                        order, scores, kinds, exclude, limit
                    )
    catalog.close()


def _set_manifest(catalog: Catalog, values: dict[str, str]) -> None:
    catalog.begin()
    catalog.set_manifest(values)
    catalog.commit()


def test_a_cached_segment_table_serves_only_its_own_commit(tmp_path: Path) -> None:
    catalog, _ = _catalog(tmp_path)
    assert SegmentTable.cached(catalog) is None  # no generation recorded: nothing to key a cache by
    _set_manifest(catalog, {"vectors_generation": "1", "vectors_checksum": "sha256:aa"})
    SegmentTable.open(catalog)
    assert SegmentTable.cached(catalog) is not None
    # A reset index numbers its generations from 1 again: another checksum, so the old cache is not used.
    _set_manifest(catalog, {"vectors_checksum": "sha256:bb"})
    assert SegmentTable.cached(catalog) is None
    _set_manifest(catalog, {"vectors_generation": "2"})
    SegmentTable.open(catalog)
    assert sorted(p.name for p in tmp_path.glob("segments-*")) == ["segments-00000002"]  # older ones removed
    catalog.close()


def test_mmsearch_query_in_process_builds_no_segment_table(golden_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mmsearch.cli.app import app

    def refuse(catalog: Catalog, resident: bool = True) -> SegmentTable:
        raise AssertionError("a one-query process built the segment table")

    monkeypatch.setattr(SegmentTable, "build", refuse)
    result = CliRunner().invoke(
        app, ["query", "red fox", "--index", str(golden_index), "--server", "http://127.0.0.1:9", "--json"]
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.output)["results"]
    assert any("red fox" in (r.get("text") or "").lower() for r in results)  # resolved through the catalog


def test_keyword_only_queries_skip_the_clip_tower(golden_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    searcher = Searcher.open(golden_index, device="cpu")
    searcher.search(Query(text="warm up"))  # measures the calibration backgrounds (their probes are embedded)
    calls: list[list[str]] = []
    embed = searcher.embedder.embed_texts
    monkeypatch.setattr(searcher.embedder, "embed_texts", lambda texts: calls.append(list(texts)) or embed(texts))
    try:
        keyword = searcher.search(Query(text="red fox", channels=("keyword",)))
        assert keyword and calls == []
        searcher.search(Query(text="red fox"))
        assert calls == [["red fox"]]
    finally:
        searcher.close()


def test_visual_and_speech_share_one_store_search(golden_index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    searcher = Searcher.open(golden_index, device="cpu")
    try:
        shared = searcher.search(Query(text="a red square", top_k=20))
        searches: list[int] = []
        original = searcher.store.search
        monkeypatch.setattr(searcher.store, "search", lambda q, k: searches.append(k) or original(q, k))
        again = searcher.search(Query(text="a blue circle", top_k=20))
        assert len(searches) == 1  # visual's deep search answered speech's shallower one
        # Without sharing (every channel searches the store itself) the answer is the same.
        monkeypatch.setattr(ChannelContext, "search", _unshared_search)
        assert searcher.search(Query(text="a red square", top_k=20)) == shared
        assert searcher.search(Query(text="a blue circle", top_k=20)) == again
    finally:
        searcher.close()


def _unshared_search(self: ChannelContext, vector: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    result = self.store.search(vector[None, :], depth)
    ids, scores = np.asarray(result.ids[0]), np.asarray(result.scores[0])
    return ids[ids >= 0], scores[ids >= 0]
