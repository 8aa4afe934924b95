"""Every segment's file, kind and time span as arrays, for one committed state of the index.

A channel asks the vector store for more hits than it needs (the store holds frames and speech together, so
finding 400 frames means reading ~1,600 hits) and keeps those of the wanted kinds. Resolving every hit through
SQLite cost ~17 ms per query at 100k segments, more than the vector search itself; here the filter is a few
array operations, and only the hits kept are read from the catalog (a server: only those that carry words).
The table is ~33 bytes per segment (330 MB at ten million). It is built once per commit, on first use, and
cached beside the catalog as `segments-NNNNNNNN/` (caches.py), one .npy file per column that later processes
open memory-mapped: a new `mmsearch query` process touches the pages of its hits only, where building the table
would read every segment row (tens of seconds at ten million).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ..index.catalog import Catalog
from ..paths import SEGMENT_TABLE_PREFIX
from ..types import SegmentHit, SegmentKind
from .caches import cache_dir, write_cache

log = logging.getLogger(__name__)

KIND_CODES: dict[SegmentKind, int] = {kind: code for code, kind in enumerate(SegmentKind)}
_KINDS: tuple[SegmentKind, ...] = tuple(SegmentKind)
_CODE_OF_VALUE: dict[str, int] = {kind.value: code for kind, code in KIND_CODES.items()}
# Frames and still images carry no words: their hits never need the catalog in a server, which holds the paths.
_WORDLESS = frozenset({SegmentKind.FRAME, SegmentKind.IMAGE})
_COLUMNS = ("ids", "file_ids", "kinds", "starts", "ends")
_META_FILE = "meta.json"
TABLE_VERSION = 1


class Excludes(Protocol):
    def covers(self, file_id: int, start: float | None, end: float | None) -> bool: ...


def table_key(catalog: Catalog) -> tuple[Path, int, str] | None:
    """(index dir, generation, vectors checksum) naming this commit's cached table, or None where there is no
    local directory or no checksum (a shared catalog, Milvus vectors): the table then lives in memory only."""
    path = getattr(catalog, "path", None)
    raw = catalog.manifest()
    generation, checksum = raw.get("vectors_generation"), raw.get("vectors_checksum")
    if not isinstance(path, Path) or generation is None or not generation.isdigit() or not checksum:
        return None
    return path.parent, int(generation), checksum


class SegmentTable:
    """Segment id → (file id, kind, start, end) as sorted arrays. `resident` (a server): file paths are held in
    memory and frame hits never touch the catalog; else (one query) paths and texts are read for the kept hits."""

    def __init__(self, catalog: Catalog, columns: dict[str, np.ndarray], resident: bool = True) -> None:
        self.catalog = catalog
        self.ids, self.file_ids, self.kinds, self.starts, self.ends = (columns[c] for c in _COLUMNS)
        self.resident = resident
        self.paths = {f.id: f.path for f in catalog.files()} if resident else {}

    @classmethod
    def build(cls, catalog: Catalog, resident: bool = True) -> SegmentTable:
        rows = catalog.segment_spans()
        ids, file_ids, kinds, starts, ends = zip(*rows, strict=True) if rows else ((), (), (), (), ())
        columns: dict[str, np.ndarray] = {
            "ids": np.asarray(ids, np.int64),
            "file_ids": np.asarray(file_ids, np.int64),
            "kinds": np.fromiter((_CODE_OF_VALUE[k] for k in kinds), np.uint8, len(kinds)),
            "starts": np.asarray(starts, np.float64),  # None (a still image has no time) becomes NaN
            "ends": np.asarray(ends, np.float64),
        }
        return cls(catalog, columns, resident)

    @classmethod
    def cached(cls, catalog: Catalog, resident: bool = True) -> SegmentTable | None:
        """This commit's table from its cache, memory-mapped; None when there is none (or it is not this commit's)."""
        key = table_key(catalog)
        if key is None:
            return None
        where = cache_dir(key[0], SEGMENT_TABLE_PREFIX, key[1])
        try:
            meta = json.loads((where / _META_FILE).read_text())
            if meta != _meta(key):
                return None  # a cache of another index that reused the generation number (a reset)
            columns = {c: np.load(where / f"{c}.npy", mmap_mode="r") for c in _COLUMNS}
        except (OSError, ValueError) as e:
            if not isinstance(e, FileNotFoundError):
                log.info("segment table cache %s unreadable (%s)", where, e)
            return None
        return cls(catalog, columns, resident)

    @classmethod
    def open(cls, catalog: Catalog, resident: bool = True) -> SegmentTable:
        """The cached table of this commit, else one built from the catalog and cached where possible."""
        found = cls.cached(catalog, resident)
        if found is not None:
            return found
        table = cls.build(catalog, resident)
        key = table_key(catalog)
        if key is not None and len(table):
            write_cache(key[0], SEGMENT_TABLE_PREFIX, key[1], table.save_with(_meta(key)))
        return table

    def save_with(self, meta: dict[str, object]) -> Callable[[Path], None]:
        def fill(directory: Path) -> None:
            for name, column in zip(
                _COLUMNS, (self.ids, self.file_ids, self.kinds, self.starts, self.ends), strict=True
            ):
                np.save(directory / f"{name}.npy", np.ascontiguousarray(column))
            (directory / _META_FILE).write_text(json.dumps(meta))

        return fill

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
        texts, paths = self._words_and_paths(kept_ids, rows)
        columns = (self.file_ids[rows], self.kinds[rows], self.starts[rows], self.ends[rows], np.asarray(scores)[keep])
        out: list[tuple[int, SegmentHit]] = []
        for i, file_id, kind, start, end, score in zip(kept_ids, *(c.tolist() for c in columns), strict=True):
            start, end = _time(start), _time(end)
            if exclude is not None and exclude.covers(file_id, start, end):
                continue
            text, channel = texts.get(i, (None, None))
            hit = SegmentHit(i, paths[file_id], _KINDS[kind], start, end, score, text, file_id, channel)
            out.append((file_id, hit))
            if limit is not None and len(out) >= limit:
                break
        return out

    def _words_and_paths(
        self, ids: list[int], rows: np.ndarray
    ) -> tuple[dict[int, tuple[str | None, int | None]], dict[int, str]]:
        """(text, stereo channel) of the kept hits that carry words, and file paths: a resident table reads only the
        worded hits (it holds the paths); otherwise every kept hit is read, in one catalog query per 500."""
        if not self.resident:
            records = self.catalog.segments_by_ids(ids)
            return {i: (r.text, r.channel) for i, r in records.items()}, {r.file_id: r.path for r in records.values()}
        worded = [i for i, code in zip(ids, self.kinds[rows].tolist(), strict=True) if _KINDS[code] not in _WORDLESS]
        if not worded:
            return {}, self.paths
        return {i: (r.text, r.channel) for i, r in self.catalog.segments_by_ids(worded).items()}, self.paths


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
            hit = SegmentHit(i, r.path, r.kind, r.start, r.end, score, r.text, r.file_id, r.channel)
            out.append((r.file_id, hit))
            if limit is not None and len(out) >= limit:
                break
        return out


def _time(value: float) -> float | None:
    return None if value != value else value  # NaN stands for "no time" (a still image)


def _meta(key: tuple[Path, int, str]) -> dict[str, object]:
    return {"version": TABLE_VERSION, "generation": key[1], "vectors_checksum": key[2]}
