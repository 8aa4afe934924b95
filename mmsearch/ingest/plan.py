"""Plan what an `index` run must do, by comparing what discover found with what the catalog holds.

Size and mtime are a fast pre-check; the content hash decides. Content already in the index is never embedded
again: a moved file keeps its vectors, a second copy reuses them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..index.catalog import FileRecord
from ..paths import display_path, is_under, path_key
from ..types import FileFailure, MediaFile

HASH_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Plan:
    unchanged: list[FileRecord] = field(default_factory=list)
    touched: list[tuple[FileRecord, MediaFile]] = field(default_factory=list)  # same content, new mtime
    moved: list[tuple[FileRecord, MediaFile]] = field(default_factory=list)
    copies: list[tuple[MediaFile, str, FileRecord]] = field(default_factory=list)
    new: list[tuple[MediaFile, str]] = field(default_factory=list)
    removed: list[FileRecord] = field(default_factory=list)
    # Files discover listed that could not be hashed (vanished or became unreadable since): reported, kept as is.
    failed: list[FileFailure] = field(default_factory=list)


def lacks_speech(record: FileRecord, want_speech: bool) -> bool:
    """Audio indexed without ASR (e.g. an earlier --no-asr run) that this run is asked to transcribe."""
    return want_speech and record.has_audio and record.asr is None


def make_plan(
    indexed: Sequence[FileRecord], files: Sequence[MediaFile], roots: Sequence[Path], want_speech: bool = False
) -> Plan:
    """`indexed`: the files the index holds now; `files`: what discovery found under `roots`."""
    plan = Plan()
    records = {r.raw_path: r for r in indexed}
    by_sha: dict[str, list[FileRecord]] = {}
    for rec in records.values():
        by_sha.setdefault(rec.sha256, []).append(rec)
    seen: set[bytes] = set()
    pending: list[tuple[MediaFile, str]] = []
    for media in files:
        key = path_key(media.path)
        seen.add(key)
        found = records.get(key)
        if found and lacks_speech(found, want_speech):
            # Same content, but now with speech: index it again (frames are re-embedded too; rare and simple).
            plan.removed.append(found)
            plan.new.append((media, found.sha256))
            continue
        if found and found.size == media.size and found.mtime_ns == media.mtime_ns:
            plan.unchanged.append(found)
            continue
        try:
            sha = sha256_file(media.path)
        except OSError as e:
            plan.failed.append(FileFailure(display_path(media.path), e.strerror or str(e)))
            continue
        if found and found.sha256 == sha:
            plan.touched.append((found, media))
        else:
            if found:
                plan.removed.append(found)
            pending.append((media, sha))
    root_keys = [path_key(r) for r in roots]
    # Files under the indexed roots that discover no longer found (deleted, moved, now unreadable).
    vanished = [r for k, r in records.items() if k not in seen and is_under(k, root_keys)]
    # Records that lack wanted speech lend nothing to moves or copies: their new paths are transcribed afresh.
    plan.removed.extend(r for r in vanished if lacks_speech(r, want_speech))
    vanished = [r for r in vanished if not lacks_speech(r, want_speech)]
    usable = {sha: [r for r in recs if not lacks_speech(r, want_speech)] for sha, recs in by_sha.items()}
    _match_moves(plan, pending, vanished, usable)
    return plan


def _match_moves(
    plan: Plan,
    pending: list[tuple[MediaFile, str]],
    vanished: list[FileRecord],
    by_sha: dict[str, list[FileRecord]],
) -> None:
    vanished_by_sha: dict[str, list[FileRecord]] = {}
    for rec in vanished:
        vanished_by_sha.setdefault(rec.sha256, []).append(rec)
    for media, sha in pending:
        if vanished_by_sha.get(sha):
            plan.moved.append((vanished_by_sha[sha].pop(), media))
            continue
        # Copies are applied before removals, so any record with this content can lend its vectors.
        sources = by_sha.get(sha, [])
        if sources:
            plan.copies.append((media, sha, sources[0]))
        else:
            plan.new.append((media, sha))
    for recs in vanished_by_sha.values():
        plan.removed.extend(recs)
