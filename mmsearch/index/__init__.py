"""One index directory: catalog, manifest, writer, and the check / remove / info operations on it."""
