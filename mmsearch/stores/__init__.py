"""Vector stores behind one protocol (protocol.py): FAISS in the index directory, or Milvus."""
