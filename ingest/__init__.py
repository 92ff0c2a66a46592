"""Files to knowledge: loaders, chunking and the ingest pipeline (also `python -m ingest`)."""
