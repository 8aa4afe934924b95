"""Reproduce zero-shot CLIP ViT-B/32 text→video retrieval on MSR-VTT 1k-A (JSFusion test split).

Published row (Portillo-Quintero et al., "A Straightforward Framework For Video Retrieval Using CLIP",
arXiv 2102.12443): R@1 31.2, R@5 53.7, R@10 64.2, MedR 4. This script is the recipe; the numbers need the data
and the weights, which the machine this was written on did not have, so it has never produced them.

    python benchmarks/msrvtt.py --csv data/msrvtt/MSRVTT_JSFUSION_test.csv --videos data/msrvtt/videos/all \\
        --model ViT-B-32:openai --out benchmarks/out/msrvtt.json

What you need:
- the split: MSRVTT_JSFUSION_test.csv (columns key,vid_key,video_id,sentence; 1000 rows, one sentence per video),
  e.g. from CLIP4Clip's msrvtt_data.zip (github.com/ArrowLuo/CLIP4Clip, "Data Preparing");
- the videos: MSR-VTT's video<N>.mp4 files in one folder, e.g. `videos/all/` of the MSRVTT.zip that
  Frozen-in-Time links (github.com/m-bain/frozen-in-time);
- the weights: `--model ViT-B-32:openai` downloads OpenAI's ViT-B/32 through open_clip when online. Offline,
  download `open_clip_pytorch_model.bin` of timm/vit_base_patch32_clip_224.openai on Hugging Face and pass
  `--model ViT-B-32-quickgelu:/path/to/open_clip_pytorch_model.bin` (OpenAI's weights were trained with
  QuickGELU; open_clip knows that for the `openai` tag but not for a bare file).

Protocol implemented (document any change next to your numbers):
1. every video is decoded with mmsearch's decoder at --fps frames per second (default 1: a frame at 0 s, 1 s, ...;
   MSR-VTT clips last 10-30 s), each frame embedded by CLIP's image tower with open_clip's preprocessing
   (resize shortest side to 224, centre crop, CLIP mean/std);
2. a video's embedding is the mean of its L2-normalised frame embeddings, L2-normalised again (mean pooling);
3. each sentence is embedded as is by the text tower (no prompt template), L2-normalised;
4. similarity is the cosine; for each of the 1000 sentences the 1000 videos are ranked by it, ties broken by
   video id in descending order as trec_eval does; the one correct video is that of the sentence's row;
5. R@k (share of sentences whose video is in the top k) comes from ir_measures (trec_eval's R@k with one
   relevant video per query); MedR (median rank of the correct video) and MeanR from the same ranks.
The paper's exact frame sampling rate is not checked here against its text; pass --fps to match it.

Video embeddings are cached in --cache (.npy + .json of video ids) so that scoring again is instant.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PUBLISHED = {"R@1": 31.2, "R@5": 53.7, "R@10": 64.2, "MedR": 4.0}
CSV_COLUMNS = ("key", "vid_key", "video_id", "sentence")
KS = (1, 5, 10)
EXIT_USAGE = 2
DATA_HINT = (
    "download MSRVTT_JSFUSION_test.csv (CLIP4Clip's msrvtt_data.zip) and the MSR-VTT videos "
    "(Frozen-in-Time's MSRVTT.zip, videos/all) and pass --csv FILE --videos DIR"
)
WEIGHTS_HINT = (
    "download open_clip_pytorch_model.bin of timm/vit_base_patch32_clip_224.openai from Hugging Face "
    "and pass --model ViT-B-32-quickgelu:/path/to/open_clip_pytorch_model.bin"
)


class MissingData(Exception):
    """Data or weights this recipe needs are not there; the message says what to get and where to point."""


@dataclass(frozen=True)
class Pair:
    key: str
    video_id: str
    sentence: str


def read_split(path: Path) -> list[Pair]:
    """Rows of MSRVTT_JSFUSION_test.csv (comma or semicolon separated, LF or CRLF), in file order."""
    if not path.is_file():
        raise MissingData(f"MSR-VTT 1k-A split not found at {path}: {DATA_HINT}")
    with path.open(newline="", encoding="utf-8-sig") as f:
        # CLIP4Clip's file is comma-separated; re-saved copies in circulation use ';' and CRLF.
        delimiter = ";" if ";" in f.readline() else ","
        f.seek(0)
        reader = csv.DictReader(f, delimiter=delimiter)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; expected header {','.join(CSV_COLUMNS)}")
        pairs = [Pair(row["key"], row["video_id"].strip(), row["sentence"].strip()) for row in reader]
    if not pairs:
        raise ValueError(f"{path} holds no rows")
    return pairs


def video_paths(pairs: Sequence[Pair], directory: Path) -> dict[str, Path]:
    """`<video_id>.mp4` (or any extension) under `directory` for every video of the split."""
    if not directory.is_dir():
        raise MissingData(f"MSR-VTT video folder not found at {directory}: {DATA_HINT}")
    paths: dict[str, Path] = {}
    for video in dict.fromkeys(p.video_id for p in pairs):
        found = directory / f"{video}.mp4"
        if not found.is_file():
            found = next(iter(sorted(directory.glob(f"{video}.*"))), found)
        if not found.is_file():
            raise MissingData(f"video {video} of the split is not in {directory}: {DATA_HINT}")
        paths[video] = found
    return paths


def load_model(spec: str, device: str) -> Any:
    from mmsearch.errors import MMSearchError
    from mmsearch.models.registry import load_embedder

    try:
        return load_embedder(spec, device)
    except MMSearchError as e:
        raise MissingData(f"CLIP weights for {spec} unavailable ({e.message}): {WEIGHTS_HINT}") from e


def embed_video(path: Path, embedder: Any, fps: float) -> np.ndarray:
    """Mean of the L2-normalised frame embeddings, L2-normalised (steps 1-2 of the protocol)."""
    from mmsearch.ingest.decode import iter_frames
    from mmsearch.ingest.discover import probe
    from mmsearch.models.clip import normalize

    frames = [embedder.embed_images(list(batch.frames)) for batch in iter_frames(probe(path), fps)]
    stacked = np.concatenate([f for f in frames if len(f)])
    return normalize(normalize(stacked).mean(axis=0, keepdims=True))[0]


def video_matrix(paths: dict[str, Path], embedder: Any, fps: float, cache: Path | None) -> np.ndarray:
    """One row per video in `paths` order, from the cache when it holds exactly these videos."""
    ids = list(paths)
    if cache is not None and cache.with_suffix(".json").is_file():
        saved = json.loads(cache.with_suffix(".json").read_text())
        if saved == {"videos": ids, "model": embedder.spec.raw, "fps": fps}:
            return np.load(cache.with_suffix(".npy"))
    began = time.perf_counter()
    rows = []
    for i, video in enumerate(ids, start=1):
        rows.append(embed_video(paths[video], embedder, fps))
        if i % 50 == 0 or i == len(ids):
            print(f"embedded {i}/{len(ids)} videos ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    matrix = np.stack(rows).astype(np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache.with_suffix(".npy"), matrix)
        cache.with_suffix(".json").write_text(json.dumps({"videos": ids, "model": embedder.spec.raw, "fps": fps}))
    return matrix


def ranks_of_truth(similarity: np.ndarray, video_ids: Sequence[str], truth: Sequence[str]) -> list[int]:
    """1-based rank of each query's correct video; ties go to the larger video id first (trec_eval's order)."""
    ids = np.asarray(video_ids)
    column = {v: j for j, v in enumerate(video_ids)}
    ranks = []
    for row, correct in zip(similarity, truth, strict=True):
        target = row[column[correct]]
        ahead = (row > target) | ((row == target) & (ids > correct))
        ranks.append(int(ahead.sum()) + 1)
    return ranks


def retrieval_metrics(similarity: np.ndarray, video_ids: Sequence[str], truth: Sequence[str]) -> dict[str, float]:
    """R@1/5/10 (in %, through ir_measures), MedR and MeanR of text→video retrieval."""
    from mmsearch.trecvid.measures import standard_measures

    if similarity.shape != (len(truth), len(video_ids)):
        raise ValueError(f"similarity is {similarity.shape}, expected ({len(truth)}, {len(video_ids)})")
    queries = [f"q{i}" for i in range(len(truth))]
    qrels = {q: {correct: 1} for q, correct in zip(queries, truth, strict=True)}
    run = {q: dict(zip(video_ids, map(float, similarity[i]), strict=True)) for i, q in enumerate(queries)}
    recall = standard_measures(qrels, run, tuple(f"R@{k}" for k in KS)).means
    ranks = ranks_of_truth(similarity, video_ids, truth)
    metrics = {f"R@{k}": round(100 * recall[f"R@{k}"], 2) for k in KS}
    metrics["MedR"] = float(statistics.median(ranks))
    metrics["MeanR"] = round(statistics.fmean(ranks), 2)
    return metrics


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, required=True, help="MSRVTT_JSFUSION_test.csv")
    parser.add_argument("--videos", type=Path, required=True, help="folder holding video<N>.mp4")
    parser.add_argument("--model", default="ViT-B-32:openai", help="open_clip ARCH:TAG or ARCH:/path/to/checkpoint")
    parser.add_argument("--fps", type=float, default=1.0, help="frames sampled per second of video")
    parser.add_argument("--device", default="auto", help="auto, cpu or gpu")
    parser.add_argument("--cache", type=Path, default=Path("benchmarks/out/msrvtt_videos"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/msrvtt.json"))
    return parser.parse_args(argv)


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    pairs = read_split(args.csv)
    paths = video_paths(pairs, args.videos)
    embedder = load_model(args.model, args.device)
    videos = video_matrix(paths, embedder, args.fps, args.cache)
    texts = embedder.embed_texts([p.sentence for p in pairs])
    metrics = retrieval_metrics(texts @ videos.T, list(paths), [p.video_id for p in pairs])
    return {"model": args.model, "fps": args.fps, "sentences": len(pairs), "videos": len(paths), **metrics}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = evaluate(args)
    except (MissingData, ValueError) as e:
        # One line whatever the cause: library messages can carry newlines.
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return EXIT_USAGE
    result["published"] = PUBLISHED
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name in (*PUBLISHED, "MeanR"):
        print(f"{name:>5}: {result[name]:>6}   (published: {PUBLISHED.get(name, '-')})")
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
