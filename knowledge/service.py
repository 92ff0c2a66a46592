"""KnowledgeService: one place that writes a document to all three stores, reads them, and keeps them agreed."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from knowledge.database import create_tables, open_database
from knowledge.embeddings import build_embeddings
from knowledge.keyword import KeywordIndex
from knowledge.registry import ChunkRecord, DocumentInfo, DocumentRegistry
from knowledge.retriever import HybridRetriever
from knowledge.settings import KnowledgeSettings
from knowledge.store import open_chroma_client, open_vector_store

logger = logging.getLogger(__name__)

EMBED_CALL_CHUNKS = 1024


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it is stored: text plus metadata (position, section...)."""

    text: str
    metadata: dict[str, str | int | float | bool]


@dataclass(frozen=True)
class DocumentDraft:
    """A loaded and chunked document, ready to be written."""

    name: str
    content_hash: str
    size_bytes: int
    chunks: list[ChunkDraft]


def chunk_id(kb: str, document: str, ordinal: int, text: str) -> str:
    return hashlib.sha256(f"{kb}\0{document}\0{ordinal}\0{text}".encode()).hexdigest()[:32]


class KnowledgeService:
    def __init__(self, settings: KnowledgeSettings, embeddings: Embeddings, registry: DocumentRegistry, chroma) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings
        self.embeddings = embeddings
        self.registry = registry
        self._chroma = chroma
        self._stores: dict[str, Any] = {}
        self._keyword: dict[str, tuple[str, KeywordIndex]] = {}
        self._lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------
    def vector_store(self, kb: str):  # type: ignore[no-untyped-def]
        with self._lock:
            if kb not in self._stores:
                self._stores[kb] = open_vector_store(self._chroma, self.embeddings, kb)
            return self._stores[kb]

    def keyword_index(self, kb: str) -> KeywordIndex:
        """The BM25 index of a knowledge base, rebuilt from the registry when its documents changed."""
        version = self.registry.version(kb)
        with self._lock:
            cached = self._keyword.get(kb)
            if cached is None or cached[0] != version:
                cached = (version, KeywordIndex(self.registry.ready_chunks(kb)))
                self._keyword[kb] = cached
            return cached[1]

    def retriever(self, kb: str, k: int | None = None) -> HybridRetriever:
        return HybridRetriever(
            vector_store=self.vector_store(kb),
            keyword_index=lambda: self.keyword_index(kb),
            settings=self.settings.retrieval,
            multilingual_embeddings=self.settings.embeddings.multilingual,
            k=k,
        )

    def list_documents(self, kb: str) -> list[DocumentInfo]:
        return self.registry.list_documents(kb)

    def is_empty(self, kb: str) -> bool:
        return self.registry.count_documents(kb) == 0

    # ---- writing -------------------------------------------------------------------------
    def add_documents(self, kb: str, documents: Sequence[DocumentDraft]) -> list[DocumentInfo]:
        """Write documents to registry, Chroma and keyword index in shared batches. Until the last step
        commits they are 'ingesting' (invisible); on any failure, or after a crash, no trace of them is left."""
        if not documents:
            return []
        ids = self.registry.begin_documents(kb, [(d.name, d.content_hash, d.size_bytes) for d in documents])
        records = {
            doc_id: [_record(kb, d.name, doc_id, i, c) for i, c in enumerate(d.chunks)]
            for doc_id, d in zip(ids, documents, strict=True)
        }
        try:
            self._embed_and_store(kb, [r for rs in records.values() for r in rs])
            self.registry.complete_documents(records)
        except BaseException:
            self._purge(kb, ids)
            raise
        return self.registry.documents(ids)

    def _embed_and_store(self, kb: str, records: list[ChunkRecord]) -> None:
        collection = self.vector_store(kb)._collection
        batch = EMBED_CALL_CHUNKS  # one large call: the model sorts by length, so less padding than small calls
        for start in range(0, len(records), batch):
            part = records[start : start + batch]
            vectors = self.embeddings.embed_documents([r.text for r in part])
            collection.upsert(
                ids=[r.id for r in part],
                embeddings=vectors,  # type: ignore[arg-type]
                documents=[r.text for r in part],
                metadatas=[r.metadata for r in part],  # type: ignore[misc]
            )

    def remove_document(self, kb: str, name: str) -> bool:
        info = self.registry.find_by_name(kb, name)
        if info is None:
            return False
        self.registry.mark_deleting(info.id)
        self._purge(kb, [info.id])
        return True

    def _purge(self, kb: str, document_ids: list[int]) -> None:
        """Chroma first, registry last: while the registry row exists, a crash is finished by reconcile()."""
        self.vector_store(kb)._collection.delete(where={"document_id": {"$in": document_ids}})
        self.registry.remove_documents(document_ids)

    def reconcile(self) -> int:
        """Make registry, Chroma and keyword index agree after a crash: finish interrupted removals, roll back
        interrupted ingests, delete vectors no registry row owns. Returns how many documents were rolled back."""
        unfinished = self.registry.unfinished_documents()
        for info in unfinished:
            logger.warning("rolling back interrupted %s of document id=%s kb=%s", info.status, info.id, info.kb)
            self._purge(info.kb, [info.id])
        for kb in self.registry.knowledge_bases():
            collection = self.vector_store(kb)._collection
            orphans = set(collection.get(include=[])["ids"]) - self.registry.all_chunk_ids(kb)
            if orphans:
                logger.warning("deleting %d vectors without a registry row in kb=%s", len(orphans), kb)
                collection.delete(ids=sorted(orphans))
        return len(unfinished)


def _record(kb: str, document: str, document_id: int, ordinal: int, draft: ChunkDraft) -> ChunkRecord:
    key = chunk_id(kb, document, ordinal, draft.text)
    metadata = {**draft.metadata, "kb": kb, "document": document, "document_id": document_id, "ordinal": ordinal}
    return ChunkRecord(id=key, text=draft.text, metadata={**metadata, "chunk_id": key})


def build_knowledge_service(
    settings: KnowledgeSettings, embeddings: Embeddings | None = None, engine: Engine | None = None
) -> KnowledgeService:
    engine = engine or open_database(settings.sqlalchemy_url)
    create_tables(engine)
    registry = DocumentRegistry(sessionmaker(engine, expire_on_commit=False))
    chroma = open_chroma_client(settings.vector_store, settings.data_dir)
    service = KnowledgeService(settings, embeddings or build_embeddings(settings.embeddings), registry, chroma)
    service.reconcile()
    return service
