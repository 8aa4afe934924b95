"""Per-channel score backgrounds, so that raw scores of different channels become evidence on one scale.

A channel's raw score (a cosine, a BM25 score, whatever a new channel computes) means little on its own: a
cosine of 0.3 is a strong text-to-frame match for CLIP and noise for text-to-text. So each channel is measured
against itself in this index: PROBES probe queries of the same kind as the user's (text, image or `--like`),
queries that ask for nothing in particular, are run through every channel, and the best score each probe gets
forms that channel's background: "what this channel returns at its top when there is no real answer here".
Probes are:

- text: PROBE_TEXTS, everyday phrases about many topics. Words drawn from the index's own transcripts are no
  good: their best match is a real, partial one. Against an index about one topic a few probes do match; the
  median and the upper quantile below shrug that off;
- image: smooth random colour fields (PROBE_GRID x PROBE_GRID blocks), embedded like a query image. Frames of
  the index are no good as probes: collections repeat content (reruns, copies, a colour shown twice), so
  their best match is often a real one;
- like: an example offers a frame-side vector, a text-side vector and words, so each probe pairs a colour field
  (visual) with a phrase (speech and keyword). Segments of the index are no good either: copies of a file are
  common, and an example's copy is a real answer.

A probe that a channel returns nothing for counts as score 0 (BM25 finding no shared word). Evidence =
(raw - median) / spread, where spread is the larger of the background's robust standard deviation (MAD) and
its upper tail ((90th percentile - median) / 1.28, what a normal background would have): a candidate at
evidence 1 beats the best result of roughly 84% of queries with no answer, at 2 about 98%, even where the tail
is heavy. Evidence is capped at EVIDENCE_CAP so that one degenerate background cannot decide alone: a channel
that finds nothing for most probes (BM25 sharing no word) has a background of zeros and a tiny spread, so any
hit it makes counts as strong evidence, up to the cap.
Backgrounds depend only on the channel name and the query kind, so a new channel is calibrated with no code here.
They are measured on first use and cached per commit as `DIR/calibration-NNNNNNNN.json` (older ones removed).
"""

from __future__ import annotations

import json
import logging
import os
import random
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .channels import Candidate, Evidence, offers

log = logging.getLogger(__name__)

PROBES = 32
# Each probe contributes its best result only: the background is "the best an unrelated query gets".
PROBE_DEPTH = 1
PROBE_GRID = 4
PROBE_IMAGE_SIZE = 224
EVIDENCE_CAP = 10.0
# MAD times this estimates the standard deviation of a normal sample; so does (90th pct - median) / 1.2816.
MAD_TO_SIGMA = 1.4826
TAIL_QUANTILE, TAIL_Z = 0.9, 1.2816
# A background without spread (every probe scored alike) gets this fraction of its scale, else MIN_SPREAD. Small:
# untrained or narrow models score everything alike (cosines 0.99 +- 0.003) and an exact match must still stand out.
MIN_SPREAD_FRACTION = 0.005
MIN_SPREAD = 1e-3
PROBE_TEXTS: tuple[str, ...] = (
    "a person walking down the street", "a red car parked on a road", "people talking in a meeting room",
    "a dog playing in the garden", "someone playing the guitar", "a city skyline at night",
    "a woman cooking pasta in a kitchen", "children playing football outside", "an airplane taking off",
    "waves crashing on a rocky shore", "a man reading a newspaper", "snow falling on pine trees",
    "a crowd cheering at a concert", "a cat sleeping on a sofa", "a train passing through a station",
    "someone typing on a laptop", "a bowl of fresh fruit", "a bicycle race on a mountain road",
    "an old church with a tall tower", "rain on a window", "a teacher writing on a blackboard",
    "horses running in a field", "a doctor talking to a patient", "fireworks over a river",
    "a boat sailing on a calm lake", "a baby laughing", "a busy market with vegetables",
    "the weather forecast for tomorrow", "a basketball game in a gym", "a birthday cake with candles",
    "a factory with large machines", "a quiet library with bookshelves",
)  # fmt: skip
CACHE_PREFIX = "calibration-"
CACHE_VERSION = 2


@dataclass(frozen=True)
class Background:
    """Where a channel's near-top scores sit for queries of one kind, in this index."""

    center: float
    spread: float
    samples: int

    @classmethod
    def of(cls, scores: Sequence[float]) -> Background | None:
        if not scores:
            return None
        ordered = sorted(scores)
        center = statistics.median(ordered)
        mad = statistics.median(abs(s - center) for s in ordered) * MAD_TO_SIGMA
        tail = (ordered[min(len(ordered) - 1, int(TAIL_QUANTILE * len(ordered)))] - center) / TAIL_Z
        scale = max(abs(ordered[0]), abs(ordered[-1]))
        spread = max(mad, tail, MIN_SPREAD_FRACTION * scale, MIN_SPREAD)
        return cls(center, spread, len(scores))

    def evidence(self, raw: float) -> float:
        """Background spreads the raw score stands above the background's median; capped at EVIDENCE_CAP."""
        return min(EVIDENCE_CAP, (raw - self.center) / self.spread)


ProbeRunner = Callable[[str, Evidence], list[Candidate]]


def probe_images(rng: random.Random) -> list[np.ndarray]:
    """PROBES images of random colour blocks, upsampled smoothly (uint8 RGB, PROBE_IMAGE_SIZE square)."""
    from PIL import Image

    gen = np.random.default_rng(rng.randrange(2**32))
    out = []
    for _ in range(PROBES):
        blocks = gen.integers(0, 256, (PROBE_GRID, PROBE_GRID, 3), dtype=np.uint8)
        image = Image.fromarray(blocks).resize((PROBE_IMAGE_SIZE, PROBE_IMAGE_SIZE), Image.Resampling.BILINEAR)
        out.append(np.asarray(image))
    return out


def measure(probes: Sequence[Evidence], channels: Sequence[str], run: ProbeRunner) -> dict[str, list[float]]:
    """Raw scores of each probe's best PROBE_DEPTH results, per channel that the probes can feed."""
    scores: dict[str, list[float]] = {}
    for name in channels:
        for probe in probes:
            if offers(probe, name):
                found = [c.hit.score for c in run(name, probe)[:PROBE_DEPTH]]
                scores.setdefault(name, []).extend(found or [0.0])
    return scores


class Calibration:
    """The backgrounds of one committed index generation, measured per query kind on first use and cached."""

    def __init__(
        self,
        index_dir: Path | None,
        generation: int,
        channels: Sequence[str],
        probes: Callable[[str, random.Random], Sequence[Evidence]],
        run: ProbeRunner,
    ) -> None:
        self.path = index_dir / f"{CACHE_PREFIX}{generation:08d}.json" if index_dir is not None else None
        self.generation = generation
        self.channels = tuple(channels)
        self._probes = probes
        self._run = run
        self._scores: dict[str, dict[str, list[float]]] | None = None

    def backgrounds(self, kind: str) -> dict[str, Background]:
        """Channel name -> background for queries of `kind` (text, image or like)."""
        scores = self._load()
        if kind not in scores:
            probes = self._probes(kind, random.Random(f"probes:{kind}"))  # the same probes for every index
            scores[kind] = measure(probes, self.channels, self._run)
            self._save(scores)
        return {name: bg for name, s in scores[kind].items() if (bg := Background.of(s)) is not None}

    def _load(self) -> dict[str, dict[str, list[float]]]:
        if self._scores is None:
            self._scores = {}
            if self.path is not None and self.path.is_file():
                try:
                    doc = json.loads(self.path.read_text())
                    if doc.get("version") == CACHE_VERSION and doc.get("channels") == list(self.channels):
                        self._scores = {k: dict(v) for k, v in doc["scores"].items()}
                except (OSError, ValueError, AttributeError) as e:
                    log.info("calibration cache %s unreadable (%s); measuring again", self.path, e)
        return self._scores

    def _save(self, scores: dict[str, dict[str, list[float]]]) -> None:
        """Temp file then rename, so a reader never sees half a cache; the cache is optional, so errors only log."""
        if self.path is None or not os.access(self.path.parent, os.W_OK):
            return
        doc = {"version": CACHE_VERSION, "channels": list(self.channels), "scores": scores}
        fd, tmp = tempfile.mkstemp(prefix=".calibration-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f)
            os.replace(tmp, self.path)
        except OSError as e:
            log.info("calibration cache not written (%s)", e)
            Path(tmp).unlink(missing_ok=True)
            return
        for old in self.path.parent.glob(f"{CACHE_PREFIX}*.json"):
            if old.name < self.path.name:  # zero-padded: string order is generation order
                old.unlink(missing_ok=True)


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()
