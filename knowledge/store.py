"""The vector store: one Chroma collection per knowledge base, embedded on disk or on a Chroma server."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from knowledge.settings import VectorStoreSettings

if TYPE_CHECKING:
    import chromadb
    from langchain_chroma import Chroma


def open_chroma_client(cfg: VectorStoreSettings, data_dir: Path) -> chromadb.ClientAPI:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    match cfg.mode:
        case "embedded":
            path = data_dir / "chroma"
            path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        case "http":
            return chromadb.HttpClient(host=cfg.host, port=cfg.port, settings=chroma_settings)


def collection_name(kb: str) -> str:
    """A valid Chroma collection name for any knowledge-base name (3-63 chars of [a-zA-Z0-9._-])."""
    readable = re.sub(r"[^a-zA-Z0-9_-]", "-", kb)[:40].strip("-_") or "kb"
    digest = hashlib.sha1(kb.encode()).hexdigest()[:10]
    return f"kb-{readable}-{digest}"


def open_vector_store(client: chromadb.ClientAPI, embeddings: Embeddings, kb: str) -> Chroma:
    from langchain_chroma import Chroma

    return Chroma(
        client=client,
        collection_name=collection_name(kb),
        embedding_function=embeddings,
        collection_metadata={"hnsw:space": "cosine", "kb": kb},
    )
