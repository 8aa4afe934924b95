"""Audio channel: sounds that are not speech ("a dog barking"). CLAP embeddings of 5 s windows of the soundtrack
(hop 2.5 s), searched with the CLAP text embedding of the query. Off unless the index was built with
`--audio-model` (a local CLAP checkpoint, or `random:clap-tiny` for tests, whose results are noise).
"""

from __future__ import annotations

from ..types import SegmentKind
from .evidence import space_search

SPACE = "audio"
KINDS = frozenset({SegmentKind.AUDIO})

search = space_search(SPACE)
