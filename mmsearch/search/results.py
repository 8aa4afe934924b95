"""A moment as JSON: the one shape shared by `mmsearch query --json` and the HTTP API (`/api/search`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import ChannelScore, Moment, SegmentHit, SegmentKind


def moment_json(moment: Moment, explain: bool = False) -> dict[str, object]:
    data = moment.to_json()
    if explain:
        data["channels"] = {name: c.to_json() for name, c in moment.channels.items()}
        if moment.parts:
            data["parts"] = [moment_json(p, explain) for p in moment.parts]
    return data


def moment_from_json(data: Mapping[str, Any]) -> Moment:
    """The inverse of `moment_json` (hits are not part of the JSON), for answers read back from a server."""
    channels = {
        name: ChannelScore(int(c["rank"]), float(c["score"]), c.get("evidence"))
        for name, c in (data.get("channels") or {}).items()
    }
    # The evidence pieces come back as the moment's hits (no segment ids: a server's JSON has none), so that the
    # moment prints the same evidence through a server as in-process.
    hits = tuple(
        SegmentHit(
            -1,
            str(data["path"]),
            SegmentKind(p["kind"]),
            p["start"],
            p["end"],
            float(p["score"]),
            p["text"],
            data.get("file_id"),
            p.get("channel"),
        )  # fmt: skip
        for p in data.get("evidence") or ()
    )
    return Moment(
        path=str(data["path"]),
        kind=SegmentKind(data["kind"]),
        start=data["start"],
        end=data["end"],
        score=data["score"],
        text=data["text"],
        hits=hits,
        channels=channels,
        parts=tuple(moment_from_json(p) for p in data.get("parts") or ()),
        file_id=data.get("file_id"),  # None from a server older than file_id in results
    )
