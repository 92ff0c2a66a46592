"""KnowledgeService: one place that writes a document to all three stores, reads them, and keeps them agreed."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from knowledge.database import Base, create_tables, open_database
from knowledge.embeddings import build_embeddings
from knowledge.errors import (
    DocumentNotFoundError,
    KnowledgeBaseBusyError,
    KnowledgeBaseNameError,
    KnowledgeBaseNotFoundError,
    RagdeskError,
    VectorStoreUnavailableError,
)
from knowledge.keyword import KeywordIndex, KeywordPostings
from knowledge.registry import READY, ChunkRecord, DocumentInfo, DocumentRegistry, KnowledgeBaseInfo
from knowledge.retriever import HybridRetriever, reciprocal_rank_fusion
from knowledge.settings import KnowledgeSettings
from knowledge.store import drop_collection, new_collection_name, open_chroma_client, open_vector_store
from knowledge.write_lease import renewed

logger = logging.getLogger(__name__)

EMBED_CALL_CHUNKS = 1024
KNOWLEDGE_TABLES = frozenset({"knowledge_bases", "documents", "chunks", "keyword_terms", "keyword_chunks"})
MAX_KB_NAME_CHARS = 100
_NOT_IN_NAMES = frozenset("/\\")  # path separators (markup is allowed: every page shows names escaped)


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
    pages: int | None = None


def chunk_id(kb: str, document: str, ordinal: int, text: str) -> str:
    return hashlib.sha256(f"{kb}\0{document}\0{ordinal}\0{text}".encode()).hexdigest()[:32]


class KnowledgeService:
    def __init__(self, settings: KnowledgeSettings, embeddings: Embeddings, registry: DocumentRegistry, chroma) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings
        self.embeddings = embeddings
        self.registry = registry
        self._chroma = chroma
        self._stores: dict[str, Any] = {}  # by collection, which never changes for a knowledge base
        self._lock = threading.Lock()

    # ---- knowledge bases -------------------------------------------------------------------
    def knowledge_bases(self) -> list[KnowledgeBaseInfo]:
        return self.registry.list_knowledge_bases()

    def knowledge_base(self, name: str) -> KnowledgeBaseInfo:
        info = self.registry.knowledge_base(name)
        if info is None or info.status != READY:
            raise KnowledgeBaseNotFoundError(f"There is no knowledge base named '{name}'.")
        return info

    def create_knowledge_base(self, name: str) -> KnowledgeBaseInfo:
        name = self._free_name(name)
        try:
            return self.registry.create_knowledge_base(name, new_collection_name(name))
        except IntegrityError as e:
            raise KnowledgeBaseNameError(f"A knowledge base named '{name}' already exists.") from e

    def ensure_knowledge_base(self, name: str) -> KnowledgeBaseInfo:
        """The knowledge base of this name, created when missing (the CLI's `--kb NEW`, the default at first start)."""
        name = " ".join(name.split())
        existing = self.registry.knowledge_base(name)
        if existing is not None and existing.status == READY:
            return existing
        try:
            return self.create_knowledge_base(name)
        except KnowledgeBaseNameError:
            created = self.registry.knowledge_base(name)  # by a concurrent caller; else the name itself is the problem
            if created is None or created.status != READY:
                raise
            return created

    def rename_knowledge_base(self, old: str, new: str) -> KnowledgeBaseInfo:
        self.knowledge_base(old)
        self._refuse_while_ingesting(old, "renamed")
        new = self._free_name(new, allow=old)
        try:
            self.registry.rename_knowledge_base(old, new)
        except IntegrityError as e:
            raise KnowledgeBaseNameError(f"A knowledge base named '{new}' already exists.") from e
        logger.info("renamed a knowledge base")
        return self.knowledge_base(new)

    def delete_knowledge_base(self, name: str) -> None:
        """Gone from listings at once; then its vectors, then its rows (documents, chunks, conversations).
        A crash in between is finished by reconcile()."""
        self.knowledge_base(name)
        self._refuse_while_ingesting(name, "deleted")
        self.registry.mark_knowledge_base_deleting(name)
        self._finish_deleting(name)

    def _finish_deleting(self, name: str) -> None:
        info = self.registry.knowledge_base(name)
        if info is None:
            return
        with self._lock:
            self._stores.pop(info.collection, None)
        drop_collection(self._chroma, info.collection)
        self.registry.remove_knowledge_base(name)

    def _refuse_while_ingesting(self, name: str, what: str) -> None:
        if self.registry.has_unfinished_documents(name):
            raise KnowledgeBaseBusyError(
                f"'{name}' has an upload in progress; it can be {what} when the upload has finished."
            )

    def _free_name(self, name: str, allow: str | None = None) -> str:
        """A valid knowledge-base name not in use, compared without case ('Sales' and 'sales' would confuse)."""
        name = " ".join(name.split())
        if not name:
            raise KnowledgeBaseNameError("Give the knowledge base a name.")
        if len(name) > MAX_KB_NAME_CHARS:
            raise KnowledgeBaseNameError(f"Knowledge-base names are at most {MAX_KB_NAME_CHARS} characters.")
        if any(unicodedata.category(c)[0] == "C" for c in name):
            raise KnowledgeBaseNameError("Knowledge-base names cannot contain control characters.")
        if any(c in _NOT_IN_NAMES for c in name) or name.startswith("."):
            raise KnowledgeBaseNameError("Knowledge-base names cannot contain / or \\, nor start with a dot.")
        taken = {n.casefold(): n for n in self.registry.knowledge_base_names() if n != allow}
        if name.casefold() in taken:
            raise KnowledgeBaseNameError(f"A knowledge base named '{taken[name.casefold()]}' already exists.")
        return name

    # ---- reading -------------------------------------------------------------------------
    def vector_store(self, kb: str):  # type: ignore[no-untyped-def]
        collection = self.knowledge_base(kb).collection
        with self._lock:
            if collection not in self._stores:
                self._stores[collection] = open_vector_store(self._chroma, self.embeddings, collection)
            return self._stores[collection]

    def keyword_index(self, kb: str) -> KeywordIndex:
        """The BM25 index of a knowledge base: postings in the database, shared by every replica."""
        return KeywordIndex(KeywordPostings(self.registry.sessions), kb)

    def retriever(self, kb: str, k: int | None = None) -> HybridRetriever:
        return HybridRetriever(
            vector_store=self.vector_store(kb),
            keyword_index=lambda: self.keyword_index(kb),
            settings=self.settings.retrieval,
            multilingual_embeddings=self.settings.embeddings.multilingual,
            k=k,
        )

    def search(self, kb: str, queries: list[str], k: int) -> list[Document]:
        """The k best chunks for one query, or for several (a question and its rewrite) fused by rank."""
        retriever = self.retriever(kb, k=k)
        if len(queries) == 1:
            return retriever.invoke(queries[0])
        rankings = [(retriever.invoke(query), 1.0) for query in queries]
        return reciprocal_rank_fusion(rankings, self.settings.retrieval.rrf_k, k)

    def close(self) -> None:
        """Give back the vector store client's connections (a Chroma server's HTTP pool, the embedded files)."""
        for client in (self._chroma, getattr(self._chroma, "_admin_client", None)):
            session = getattr(getattr(client, "_server", None), "_session", None)
            if session is not None:  # chromadb's HTTP clients (its own and its admin's) stay open past close()
                session.close()
        self._chroma.close()

    def vector_store_answers(self) -> bool:
        """Whether the vector store answers a heartbeat now (a Chroma server can be down while the app runs)."""
        try:
            self._chroma.heartbeat()
        except Exception:  # a probe: whatever the client raises means "not now"
            return False
        return True

    def health(self) -> dict[str, Any]:
        """Whether the registry database and the vector store answer, with each knowledge base's documents."""
        checks: dict[str, Any] = {}
        try:
            checks["knowledge_bases"] = {kb.name: kb.documents for kb in self.knowledge_bases()}
            checks["database"] = "ok"
        except SQLAlchemyError as e:
            checks["database"] = f"error: {type(e).__name__}"
        try:
            self._chroma.heartbeat()
            self._chroma.count_collections()  # reads the store itself, not just the client's clock
            checks["vector_store"] = "ok"
        except Exception as e:  # a probe: whatever Chroma's client raises (its own errors, HTTP, sqlite) is "degraded"
            logger.warning("vector store health check failed", exc_info=True)
            checks["vector_store"] = f"error: {type(e).__name__}"
        return checks

    def list_documents(self, kb: str) -> list[DocumentInfo]:
        self.knowledge_base(kb)
        return self.registry.list_documents(kb)

    def document_chunks(self, kb: str, name: str) -> list[ChunkRecord]:
        """What the retriever sees of a document: its chunks in order, with position metadata."""
        info = self.registry.find_by_name(kb, name)
        if info is None:
            raise DocumentNotFoundError(f"There is no document named '{name}' in '{kb}'.")
        return self.registry.document_chunks(info.id)

    def is_empty(self, kb: str) -> bool:
        return self.registry.count_documents(kb) == 0

    # ---- writing -------------------------------------------------------------------------
    def add_documents(self, kb: str, documents: Sequence[DocumentDraft]) -> list[DocumentInfo]:
        """Write documents to registry, Chroma and keyword index in shared batches. Until the last step
        commits they are 'ingesting' (invisible); on any failure, or after a crash, no trace of them is left."""
        if not documents:
            return []
        self.knowledge_base(kb)
        for info in self.registry.unfinished_documents(kb, [d.name for d in documents]):  # a crashed write's name
            self._purge(kb, [info.id])
        ids = self.registry.begin_documents(kb, [(d.name, d.content_hash, d.size_bytes, d.pages) for d in documents])
        records = {
            doc_id: [_record(kb, d.name, doc_id, i, c) for i, c in enumerate(d.chunks)]
            for doc_id, d in zip(ids, documents, strict=True)
        }
        try:
            with renewed(lambda: self.registry.renew_leases(ids)):
                self._embed_and_store(kb, [r for rs in records.values() for r in rs])
                self.registry.complete_documents(records)
        except BaseException:  # whatever stops the write, even Ctrl-C: leave no half-written document, re-raise
            try:
                self._purge(kb, ids)
            except VectorStoreUnavailableError:  # no row left; the vectors it may have written, reconcile() deletes
                self.registry.remove_documents(ids)
            raise
        return self.registry.documents(ids)

    def _embed_and_store(self, kb: str, records: list[ChunkRecord]) -> None:
        batch = EMBED_CALL_CHUNKS  # one large call: the model sorts by length, so less padding than small calls
        for start in range(0, len(records), batch):
            part = records[start : start + batch]
            vectors = self.embeddings.embed_documents([r.text for r in part])
            with vector_store_errors("could not store the chunks"):
                self.vector_store(kb)._collection.upsert(
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
        with renewed(lambda: self.registry.renew_leases([info.id])):
            self._purge(kb, [info.id])
        return True

    def _purge(self, kb: str, document_ids: list[int]) -> None:
        """Chroma first, registry last: while the registry row exists, a crash is finished by reconcile()."""
        with vector_store_errors("could not remove the chunks (the next start finishes it)"):
            self.vector_store(kb)._collection.delete(where={"document_id": {"$in": document_ids}})
        self.registry.remove_documents(document_ids)

    def reconcile(self) -> int:
        """Make registry, Chroma and keyword index agree after a crash: finish interrupted removals, roll back
        interrupted ingests, delete vectors no registry row owns. What a live writer (another replica, a CLI
        ingest) is writing right now is left alone. Returns how many documents were rolled back."""
        for kb_info in self.registry.knowledge_bases_being_deleted():
            logger.warning("finishing the interrupted deletion of a knowledge base")
            self._finish_deleting(kb_info.name)
        indexed = KeywordPostings(self.registry.sessions).index_unindexed_chunks()
        if indexed:
            logger.info("indexed %d chunks stored before the keyword index lived in the database", indexed)
        unfinished = self.registry.unfinished_documents()
        for info in unfinished:
            logger.warning("rolling back interrupted %s of document id=%s", info.status, info.id)
            self._purge(info.kb, [info.id])
        for kb in self.registry.knowledge_base_names():
            orphans = self._orphan_vectors(kb)
            if orphans:
                logger.warning("deleting %d vectors without a registry row in kb=%s", len(orphans), kb)
                self.vector_store(kb)._collection.delete(ids=orphans)
        return len(unfinished)

    def _orphan_vectors(self, kb: str) -> list[str]:
        """Vectors no registry row owns, but for those of a document a live writer is storing. Vectors are
        counted and read before the registry: a vector seen then belongs to a document begun before, now held,
        finished or gone."""
        collection = self.vector_store(kb)._collection
        if collection.count() <= self.registry.count_chunks(kb):  # no more vectors than rows: no ids read
            return []
        vectors = set(collection.get(include=[])["ids"])
        held, owned = self.registry.held_document_ids(), self.registry.all_chunk_ids(kb)
        orphans = sorted(vectors - owned)
        if not orphans or not held:
            return orphans
        found = collection.get(ids=orphans, include=["metadatas"])
        metadatas = found["metadatas"] or []
        return [i for i, m in zip(found["ids"], metadatas, strict=True) if (m or {}).get("document_id") not in held]


def _ready_for_ingest(engine: Engine) -> None:
    """An empty database gets the knowledge tables (the app adds the rest on its first start); one made by an
    earlier version must be upgraded by the app first."""
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    if not tables:
        create_tables(engine)
        return
    ours = [t for t in Base.metadata.sorted_tables if t.name in KNOWLEDGE_TABLES]
    missing = [f"no {t.name} table" for t in ours if t.name not in tables] + [
        f"no {t.name}.{c.name} column"
        for t in ours
        if t.name in tables
        for c in t.columns
        if c.name not in {column["name"] for column in inspector.get_columns(t.name)}
    ]
    if missing:
        raise RagdeskError(
            f"The database was made by an earlier version ({', '.join(missing)}). Start the app "
            "once, or run `python -m chatbot.migrations upgrade`, then ingest again."
        )


@contextlib.contextmanager
def vector_store_errors(what: str) -> Iterator[None]:
    """A vector store client's own error (HTTP, gRPC, Chroma's), as a message an admin can act on."""
    try:
        yield
    except RagdeskError:
        raise
    except Exception as e:  # every backend raises its own types
        raise VectorStoreUnavailableError(
            f"The vector store {what}: {type(e).__name__}: {str(e)[:200]}. Is the Chroma server running?"
        ) from e


def _record(kb: str, document: str, document_id: int, ordinal: int, draft: ChunkDraft) -> ChunkRecord:
    key = chunk_id(kb, document, ordinal, draft.text)
    metadata = {**draft.metadata, "document": document, "document_id": document_id, "ordinal": ordinal}
    return ChunkRecord(id=key, text=draft.text, metadata={**metadata, "chunk_id": key})


def build_knowledge_service(
    settings: KnowledgeSettings, embeddings: Embeddings | None = None, engine: Engine | None = None
) -> KnowledgeService:
    if engine is None:  # `python -m ingest` on its own: the app migrates the schema, ingest never does
        engine = open_database(settings.sqlalchemy_url)
        try:
            _ready_for_ingest(engine)
        except RagdeskError:
            engine.dispose()
            raise
    registry = DocumentRegistry(sessionmaker(engine, expire_on_commit=False))
    chroma = open_chroma_client(settings.vector_store, settings.data_dir)
    service = KnowledgeService(settings, embeddings or build_embeddings(settings.embeddings), registry, chroma)
    service.reconcile()
    if not registry.knowledge_base_names():
        service.ensure_knowledge_base(settings.default_kb)
    return service
