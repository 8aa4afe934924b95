"""Text channel: the meaning of what is said and shown. Sentence embeddings (all-MiniLM-L6-v2 by default) of
transcript and on-screen text (ocr) segments, searched with the query's sentence embedding.

At ingest `ingest/extras.py` fills the `text` space; a paraphrase that shares no word with the transcript
("a cook cut raw fish with a blade" for "the chef sliced fresh salmon") is found here, where BM25 and the CLIP
text tower fail. It ranks the same units as `keyword` (one segment each), so fusion adds up their evidence.
"""

from __future__ import annotations

from ..types import SegmentKind
from .evidence import space_search

SPACE = "text"
KINDS = frozenset({SegmentKind.SPEECH, SegmentKind.OCR})

search = space_search(SPACE)
