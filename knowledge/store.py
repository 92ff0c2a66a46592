"""The vector store: one Chroma collection per knowledge base, embedded on disk or on a Chroma server."""

from __future__ import annotations

import contextlib
import re
import uuid
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


def new_collection_name(kb: str) -> str:
    """A fresh, valid Chroma collection name (3-63 chars of [a-zA-Z0-9._-]) for a new knowledge base. It is
    stored with the knowledge base and never derived again, so renaming the knowledge base moves no vectors."""
    readable = re.sub(r"[^a-zA-Z0-9_-]", "-", kb)[:40].strip("-_") or "kb"
    return f"kb-{readable}-{uuid.uuid4().hex[:12]}"


def open_vector_store(client: chromadb.ClientAPI, embeddings: Embeddings, collection: str) -> Chroma:
    from langchain_chroma import Chroma

    return Chroma(
        client=client,
        collection_name=collection,
        embedding_function=embeddings,
        collection_metadata={"hnsw:space": "cosine"},
    )


def drop_collection(client: chromadb.ClientAPI, collection: str) -> None:
    """Delete a collection; one that is already gone is fine (a crash may have happened after the delete)."""
    from chromadb.errors import NotFoundError

    with contextlib.suppress(NotFoundError):
        client.delete_collection(collection)
