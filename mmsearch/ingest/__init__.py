"""The ingest pipeline: discover -> plan -> decode (+ shots) -> transcribe -> embed -> store (runner.py)."""
