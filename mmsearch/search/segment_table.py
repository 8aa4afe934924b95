"""Every segment's file, kind and time span, held in memory by a searcher for one committed state of the index.

A channel asks the vector store for more hits than it needs (the store holds frames and speech together, so
finding 400 frames means reading ~1,600 hits) and keeps those of the wanted kinds. Resolving every hit through
SQLite cost ~17 ms per query at 100k segments, more than the vector search itself; here the filter is a few
array operations, and only the hits kept that carry words (speech, on-screen text) are read from the catalog.
The table is ~33 bytes per segment (33 MB at a million) and is built once per generation, on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..index.catalog import Catalog
from ..types import SegmentHit, SegmentKind

KIND_CODES: dict[SegmentKind, int] = {kind: code for code, kind in enumerate(SegmentKind)}
_KINDS: tuple[SegmentKind, ...] = tuple(SegmentKind)
# Frames and still images carry no words: their hits never need the catalog.
_WORDLESS = frozenset({SegmentKind.FRAME, SegmentKind.IMAGE})


class Excludes(Protocol):
    def covers(self, file_id: int, start: float | None, end: float | None) -> bool: ...


class SegmentTable:
    """Segment id → (file id, kind, start, end) as sorted arrays; a file's path by its id."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        rows = catalog.segment_spans()
        self.ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        self.file_ids = np.fromiter((r[1] for r in rows), np.int64, len(rows))
        self.kinds = np.fromiter((KIND_CODES[SegmentKind(r[2])] for r in rows), np.uint8, len(rows))
        self.starts = np.fromiter((np.nan if r[3] is None else r[3] for r in rows), np.float64, len(rows))
        self.ends = np.fromiter((np.nan if r[4] is None else r[4] for r in rows), np.float64, len(rows))
        self.paths = {f.id: f.path for f in catalog.files()}

    def __len__(self) -> int:
        return len(self.ids)

    def hits(
        self,
        ids: Sequence[int] | np.ndarray,
        scores: Sequence[float] | np.ndarray,
        kinds: frozenset[SegmentKind],
        exclude: Excludes | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, SegmentHit]]:
        """(file id, hit) for the ids of a wanted kind in the index, in the order given, at most `limit` of them;
        ids the index does not have (any more) are dropped."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0 or len(self.ids) == 0:
            return []
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        keep = np.flatnonzero((self.ids[pos] == ids) & np.isin(self.kinds[pos], [KIND_CODES[k] for k in kinds]))
        if exclude is None and limit is not None:
            keep = keep[:limit]  # nothing is dropped below: no need to look further
        rows = pos[keep]
        kept_ids = ids[keep].tolist()
        texts = self._texts(kept_ids, rows)
        columns = (self.file_ids[rows], self.kinds[rows], self.starts[rows], self.ends[rows], np.asarray(scores)[keep])
        out: list[tuple[int, SegmentHit]] = []
        for i, file_id, kind, start, end, score in zip(kept_ids, *(c.tolist() for c in columns), strict=True):
            start, end = _time(start), _time(end)
            if exclude is not None and exclude.covers(file_id, start, end):
                continue
            hit = SegmentHit(i, self.paths[file_id], _KINDS[kind], start, end, score, texts.get(i), file_id)
            out.append((file_id, hit))
            if limit is not None and len(out) >= limit:
                break
        return out

    def _texts(self, ids: list[int], rows: np.ndarray) -> dict[int, str | None]:
        worded = [i for i, code in zip(ids, self.kinds[rows].tolist(), strict=True) if _KINDS[code] not in _WORDLESS]
        if not worded:
            return {}
        return {i: r.text for i, r in self.catalog.segments_by_ids(worded).items()}


class CatalogSegments:
    """The same answers as SegmentTable, read from the catalog on each call: for a process that runs one query
    (`mmsearch query` without a server), where building the table would cost more than the query saves."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def hits(
        self,
        ids: Sequence[int] | np.ndarray,
        scores: Sequence[float] | np.ndarray,
        kinds: frozenset[SegmentKind],
        exclude: Excludes | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, SegmentHit]]:
        wanted = [int(i) for i in ids]
        records = self.catalog.segments_by_ids(wanted)
        out: list[tuple[int, SegmentHit]] = []
        for i, score in zip(wanted, np.asarray(scores).tolist(), strict=True):
            r = records.get(i)
            if r is None or r.kind not in kinds or (exclude is not None and exclude.covers(r.file_id, r.start, r.end)):
                continue
            out.append((r.file_id, SegmentHit(i, r.path, r.kind, r.start, r.end, score, r.text, r.file_id)))
            if limit is not None and len(out) >= limit:
                break
        return out


def _time(value: float) -> float | None:
    return None if value != value else value  # NaN stands for "no time" (a still image)
