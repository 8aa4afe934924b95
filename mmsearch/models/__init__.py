"""Model specs, the model registry and the embedders built from it (shared by ingest and search)."""
