"""A synthetic TRECVID AVS-style test collection whose relevance judgments follow from how it was made.

    python benchmarks/trecvid_synth.py --out benchmarks/out/trecvid_synth --videos 10 --seed 5

Writes, under --out:
    media/00001.mp4 ...      videos of 3-5 hard-cut shots (solid colours, lavfi test patterns) with spoken
                             sentences (espeak-ng), from mmsearch.testing.media.make_collection; ids as V3C numbers them
    truth.json               what every video shows and says, and when (mmsearch.testing.media.write_truth_json)
    msb.txt                  master shot reference, `shot<video>_<n> start end` (mmsearch.trecvid.msb format a)
    msb/<video>.tsv          the same shots as NIST's V3C per-video files (startframe starttime endframe endtime)
    topics.xml, topics.txt   the topics as AVS XML and as `num text` lines (same numbers, same texts)
    qrels.txt                stratified sample qrels `topic 0 shotId stratum judgment` for sample_eval / xinfAP
    qrels_full.txt           every shot judged, one stratum: the truth the sampled qrels estimate
    collection.json          parameters, and per topic its kind, text, origin and relevant shots

Topics. A speech topic comes from one spoken sentence: `verbatim` is the sentence itself, `keywords` its content
words, `partial` two of them. Sentences of mmsearch.testing.media.SENTENCES share no content word, so its relevant shots
are exactly the shots that overlap an utterance of that sentence (in any video that speaks it). A visual topic
describes one shot source ("a plain red screen"); its relevant shots are the shots showing it. There are no
free paraphrases: they need a real text encoder to be found, and cannot be judged without a person.

Judgments. The pool of every topic is the whole collection (a small collection needs no pooling of runs). Per
topic, a seeded shuffle puts --full-share of the shots in stratum 1, judged completely, and the rest in
stratum 2, of which --sample-rate are judged and the others get -1 (in the pool, not sampled). Sampling is
independent of relevance, which is what makes inferred AP an unbiased estimate of AP on qrels_full.txt.
Everything is a function of --seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mmsearch.testing.media import FUNCTION_WORDS, VideoTruth, make_collection, write_truth_json
from mmsearch.trecvid.msb import MasterShotReference, Shot, write_msb

# V3C names its videos with five digits from 00001.
VIDEO_ID_WIDTH = 5
# AVS topic numbers are four digits; speech topics from here, visual topics after them.
FIRST_TOPIC = 1001
SPEECH_KINDS: tuple[str, ...] = ("verbatim", "keywords", "partial")
# Content words kept by a `partial` topic.
PARTIAL_WORDS = 2
# What a person would type to find a shot of each mmsearch.testing.media.COLLECTION_SOURCES source.
VISUAL_TEXT: dict[str, str] = {
    "red": "a plain red screen",
    "lime": "a plain bright green screen",
    "blue": "a plain blue screen",
    "yellow": "a plain yellow screen",
    "magenta": "a plain magenta pink screen",
    "cyan": "a plain cyan light blue screen",
    "orange": "a plain orange screen",
    "purple": "a plain purple screen",
    "white": "a plain white screen",
    "black": "a plain black screen",
    "testsrc": "a television test pattern with colour bars, a gradient and a frame counter",
    "testsrc2": "a colourful moving test pattern with a frame counter",
    "smptebars": "vertical SMPTE colour bars television test pattern",
    "rgbtestsrc": "red green and blue vertical stripes",
    "mandelbrot": "a colourful Mandelbrot fractal",
    "life": "a black and white cellular automaton, Conway's game of life",
    "cellauto": "a black and white elementary cellular automaton pattern",
    "gradients": "smooth colour gradients",
}


@dataclass(frozen=True)
class SynthTopic:
    num: str
    kind: str  # verbatim, keywords, partial or visual
    text: str
    origin: str  # the spoken sentence, or the shot source
    relevant: tuple[str, ...]  # shot ids, sorted


@dataclass(frozen=True)
class Strata:
    """Stratum 1 holds `full_share` of the pool, all judged; stratum 2 the rest, `sample_rate` of it judged."""

    full_share: float = 0.5
    sample_rate: float = 0.5

    def __post_init__(self) -> None:
        for name, value in (("full share", self.full_share), ("sample rate", self.sample_rate)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


def video_id(index: int) -> str:
    return f"{index + 1:0{VIDEO_ID_WIDTH}d}"


def build_msb(truths: Sequence[VideoTruth]) -> MasterShotReference:
    """Shots of each video in time order as `shot<video>_<n>`, the video id being the file's stem."""
    videos = {}
    for truth in truths:
        vid = truth.path.stem
        videos[vid] = tuple(
            Shot(f"shot{vid}_{n}", vid, span.start, span.end) for n, span in enumerate(truth.shots, start=1)
        )
    return MasterShotReference(videos)


def content_words(sentence: str) -> list[str]:
    return [w for w in sentence.split() if w not in FUNCTION_WORDS]


def speech_topic_text(sentence: str, kind: str, rng: random.Random) -> str:
    words = content_words(sentence)
    if kind == "verbatim":
        return sentence
    if kind == "keywords":
        return " ".join(words)
    if kind == "partial":
        keep = sorted(rng.sample(range(len(words)), min(PARTIAL_WORDS, len(words))))
        return " ".join(words[i] for i in keep)
    raise ValueError(f"unknown speech topic kind {kind!r}; use one of {', '.join(SPEECH_KINDS)}")


def speech_topics(
    truths: Sequence[VideoTruth], msb: MasterShotReference, n_topics: int, rng: random.Random, first: int
) -> list[SynthTopic]:
    """Topics for `n_topics` spoken sentences, kinds taken in turn; relevant = shots the utterances overlap."""
    relevant: dict[str, set[str]] = {}
    for truth in truths:
        for u in truth.utterances:
            shots = msb.overlapping(truth.path.stem, u.start, u.end)
            relevant.setdefault(u.text, set()).update(s.shot_id for s in shots)
    sentences = list(relevant)
    rng.shuffle(sentences)
    topics = []
    for i, sentence in enumerate(sentences[:n_topics]):
        kind = SPEECH_KINDS[i % len(SPEECH_KINDS)]
        text = speech_topic_text(sentence, kind, rng)
        topics.append(SynthTopic(str(first + i), kind, text, sentence, tuple(sorted(relevant[sentence]))))
    return topics


def visual_topics(
    truths: Sequence[VideoTruth], msb: MasterShotReference, n_topics: int, rng: random.Random, first: int
) -> list[SynthTopic]:
    """Topics for `n_topics` of the shot sources seen in the collection; relevant = the shots showing it."""
    showing: dict[str, list[str]] = {}
    for truth in truths:
        for shot, span in zip(msb.shots(truth.path.stem), truth.shots, strict=True):
            showing.setdefault(span.source, []).append(shot.shot_id)
    sources = sorted(showing)
    rng.shuffle(sources)
    return [
        SynthTopic(str(first + i), "visual", VISUAL_TEXT[source], source, tuple(sorted(showing[source])))
        for i, source in enumerate(sources[:n_topics])
    ]


def stratified_qrels(topic: SynthTopic, shots: Sequence[str], seed: int, strata: Strata) -> list[tuple[str, int, int]]:
    """(shot id, stratum, judgment) for every shot of the pool; judgment 1, 0, or -1 when not sampled."""
    # A string seed is hashed with SHA-512 by `random`, so the draw is the same on every run and platform.
    rng = random.Random(f"{seed}/{topic.num}")
    pool = sorted(shots)
    rng.shuffle(pool)
    n_full = round(strata.full_share * len(pool))
    rest = pool[n_full:]
    sampled = set(rng.sample(rest, round(strata.sample_rate * len(rest))))
    relevant = set(topic.relevant)
    rows = [(shot, 1, int(shot in relevant)) for shot in pool[:n_full]]
    rows += [(shot, 2, int(shot in relevant) if shot in sampled else -1) for shot in rest]
    return sorted(rows)


def qrels_lines(topics: Sequence[SynthTopic], shots: Sequence[str], seed: int, strata: Strata | None) -> list[str]:
    """sample_eval qrels lines; strata None judges every shot in one stratum."""
    lines = []
    for topic in topics:
        if strata is None:
            relevant = set(topic.relevant)
            rows = [(shot, 1, int(shot in relevant)) for shot in sorted(shots)]
        else:
            rows = stratified_qrels(topic, shots, seed, strata)
        lines += [f"{topic.num} 0 {shot} {stratum} {judgment}" for shot, stratum, judgment in rows]
    return lines


def topics_xml(topics: Sequence[SynthTopic]) -> str:
    root = ET.Element("videoAdhocSearchTopics")
    for topic in topics:
        element = ET.SubElement(root, "videoAdhocSearchTopic", {"num": topic.num})
        ET.SubElement(element, "textDescription", {"text": topic.text})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_v3c_msb(msb: MasterShotReference, fps: int, directory: Path) -> None:
    """NIST's per-video layout: a shot ends on its last frame, one frame before the next shot starts."""
    directory.mkdir(parents=True, exist_ok=True)
    for vid, shots in msb.videos.items():
        rows = ["startframe\tstarttime\tendframe\tendtime"]
        for shot in shots:
            first, last = round(shot.start * fps), round(shot.end * fps) - 1
            rows.append(f"{first}\t{first / fps:.3f}\t{last}\t{last / fps:.3f}")
        (directory / f"{vid}.tsv").write_text("\n".join(rows) + "\n")


def make_media(
    out: Path, n_videos: int, sentences: int, seed: int, size: tuple[int, int], fps: int
) -> list[VideoTruth]:
    """make_collection's videos, renamed to V3C-style ids (the msb names videos by file stem)."""
    truths = make_collection(out / "media", n_videos, sentences, seed=seed, size=size, fps=fps)
    renamed = []
    for i, truth in enumerate(truths):
        target = truth.path.with_name(f"{video_id(i)}{truth.path.suffix}")
        truth.path.replace(target)
        renamed.append(dataclasses.replace(truth, path=target))
    return renamed


def generate(
    out: Path,
    n_videos: int,
    sentences: int,
    n_speech: int,
    n_visual: int,
    seed: int,
    strata: Strata,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
) -> list[SynthTopic]:
    """Render the collection and write every file listed in the module docstring; returns the topics."""
    out.mkdir(parents=True, exist_ok=True)
    truths = make_media(out, n_videos, sentences, seed, size, fps)
    write_truth_json(truths, out / "truth.json")
    msb = build_msb(truths)
    write_msb(msb, out / "msb.txt")
    write_v3c_msb(msb, fps, out / "msb")
    rng = random.Random(seed)
    topics = speech_topics(truths, msb, n_speech, rng, FIRST_TOPIC)
    topics += visual_topics(truths, msb, n_visual, rng, FIRST_TOPIC + len(topics))
    shots = [s.shot_id for vid in msb.videos for s in msb.shots(vid)]
    (out / "topics.xml").write_text(topics_xml(topics))
    (out / "topics.txt").write_text("".join(f"{t.num} {t.text}\n" for t in topics))
    (out / "qrels.txt").write_text("\n".join(qrels_lines(topics, shots, seed, strata)) + "\n")
    (out / "qrels_full.txt").write_text("\n".join(qrels_lines(topics, shots, seed, None)) + "\n")
    manifest = {
        "seed": seed,
        "videos": n_videos,
        "sentences_per_video": sentences,
        "shots": len(shots),
        "media_seconds": round(sum(t.duration for t in truths), 3),
        "strata": dataclasses.asdict(strata),
        "topics": [dataclasses.asdict(t) for t in topics],
    }
    (out / "collection.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return topics


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the collection into")
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--sentences", type=int, default=3, help="spoken sentences per video")
    parser.add_argument("--speech-topics", type=int, default=12, help="at most one per distinct sentence")
    parser.add_argument("--visual-topics", type=int, default=6, help="at most one per shot source used")
    parser.add_argument("--full-share", type=float, default=0.5, help="share of the pool in stratum 1")
    parser.add_argument("--sample-rate", type=float, default=0.5, help="share of stratum 2 that is judged")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--size", default="320x240", help="frame size WxH (even numbers)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    w, h = (int(x) for x in args.size.split("x"))
    strata = Strata(args.full_share, args.sample_rate)
    topics = generate(
        args.out, args.videos, args.sentences, args.speech_topics, args.visual_topics, args.seed, strata, (w, h)
    )
    kinds = {kind: sum(t.kind == kind for t in topics) for kind in (*SPEECH_KINDS, "visual")}
    print(f"wrote {args.videos} videos and {len(topics)} topics {kinds} to {args.out}")


if __name__ == "__main__":
    main()
