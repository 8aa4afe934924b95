"""TRECVID Ad-hoc Video Search (AVS) evaluation: topics, master shot reference, run files and xinfAP.

Modules, one per concern:
    topics    NIST topic files (XML or `num text` lines) → `Topic`
    msb       master shot boundary reference → `MasterShotReference` (time → shot)
    runfile   segment hits → shot scores → TREC run / AVS submission XML
    xinfap    Python port of NIST's sample_eval.pl (inferred AP / NDCG over stratified samples)
    measures  fully judged measures through ir_measures, plus known-item moment recall / MedR
    commands  the `mmsearch eval` and `mmsearch run` Typer commands
"""

from __future__ import annotations

from mmsearch.trecvid.msb import MasterShotReference, Shot, load_msb, video_id_for_path, write_msb
from mmsearch.trecvid.runfile import read_trec_run, shot_scores, write_avs_xml, write_trec_run
from mmsearch.trecvid.topics import Topic, load_topics
from mmsearch.trecvid.xinfap import EvalResult, evaluate

__all__ = [
    "EvalResult",
    "MasterShotReference",
    "Shot",
    "Topic",
    "evaluate",
    "load_msb",
    "load_topics",
    "read_trec_run",
    "shot_scores",
    "video_id_for_path",
    "write_avs_xml",
    "write_msb",
    "write_trec_run",
]
