"""`mmsearch serve`: the HTTP API and the web page over one index (FastAPI on uvicorn)."""
