"""The channel filters the page offers: the channels of the search registry that this index can answer.

A channel is there when the index holds segments of a kind it ranks and, for a channel of an extra space (text,
audio), vectors in that space. The labels are for people; the names are what `channel=` takes.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..search.channels import REGISTRY

# The queries a channel can search with, by what it needs: CLIP vectors come with a text, an image or an example;
# words (keyword) and the extra spaces' query vectors come only with a text (an example has words only if spoken).
QUERIES: dict[str, tuple[str, ...]] = {
    "visual": ("text", "image", "like"),
    "speech": ("text", "image", "like"),
    "text": ("text",),
    "space": ("text",),
}
# Channels whose queries differ from what they need: the face space has no text encoder, only photos' faces.
CHANNEL_QUERIES: dict[str, tuple[str, ...]] = {"face": ("face",)}
LABELS: dict[str, str] = {
    "visual": "Pictures",
    "speech": "Speech",
    "keyword": "Keywords",
    "text": "Text meaning",
    "audio": "Sounds",
    "face": "Faces",
    "people": "People by name",
}


def index_channels(info: Mapping[str, object]) -> list[dict[str, object]]:
    """`[{name, label, about, queries}]` of the channels that have something to search in `info` (`mmsearch info --json`)."""
    segments = info.get("segments")
    spaces = info.get("spaces")
    counts = segments if isinstance(segments, Mapping) else {}
    space_info = spaces if isinstance(spaces, Mapping) else {}
    found: list[dict[str, object]] = []
    for name, channel in REGISTRY.items():
        has_segments = any(counts.get(kind.value, 0) > 0 for kind in channel.kinds)
        space = space_info.get(channel.space) if channel.space is not None else None
        has_space = channel.space is None or (isinstance(space, Mapping) and space.get("vectors", 0) > 0)
        if has_segments and has_space:
            label = LABELS.get(name, name)
            queries = CHANNEL_QUERIES.get(name, QUERIES[channel.needs])
            found.append({"name": name, "label": label, "about": channel.about, "queries": queries})
    return found
