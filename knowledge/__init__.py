"""The knowledge base that chat and ingest share: embeddings, vector store, keyword index, registry."""
