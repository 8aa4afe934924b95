"""The search side: searcher, channels, fusion, moments, shots, keyword (BM25) and query by example."""
