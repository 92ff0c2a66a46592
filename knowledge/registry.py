"""The registry: the knowledge bases, the documents each holds (hash, size, pages, chunks, status) and their chunks.

Chunk texts live here too, so the keyword index can be rebuilt from SQL and the three stores
(registry, Chroma, keyword index) can be checked against each other.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from knowledge.database import Base, utcnow
from knowledge.tokens import tokenize
from knowledge.write_lease import LEASE, abandoned, this_writer

READY = "ready"
INGESTING = "ingesting"
DELETING = "deleting"
MAX_TERM_CHARS = 100


def kb_reference() -> ForeignKey:
    """A column that names a knowledge base: follows a rename, goes with a deletion."""
    return ForeignKey("knowledge_bases.name", onupdate="CASCADE", ondelete="CASCADE")


class KnowledgeBaseRow(Base):
    __tablename__ = "knowledge_bases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    collection: Mapped[str] = mapped_column(String(63), unique=True)  # fixed at creation, so a rename moves no vectors
    status: Mapped[str] = mapped_column(String(20), default=READY)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DocumentRow(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("kb", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference(), index=True)
    name: Mapped[str] = mapped_column(String(512))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=INGESTING)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)  # see knowledge/write_lease.py
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ChunkRow(Base):
    __tablename__ = "chunks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference(), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)


class KeywordTermRow(Base):
    """A posting of the keyword index: how often a token occurs in a chunk (written with the chunk)."""

    __tablename__ = "keyword_terms"

    chunk_id: Mapped[str] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True)
    token: Mapped[str] = mapped_column(String(MAX_TERM_CHARS), primary_key=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference())
    tf: Mapped[int] = mapped_column(Integer)
    length: Mapped[int] = mapped_column(Integer)  # the chunk's length in tokens (here too: scored without a join)

    __table_args__ = (Index("ix_keyword_terms_kb_token", "kb", "token", "chunk_id", "tf", "length"),)  # covering


class KeywordChunkRow(Base):
    """A chunk's length in tokens, for BM25's length normalisation."""

    __tablename__ = "keyword_chunks"

    chunk_id: Mapped[str] = mapped_column(ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference())
    length: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_keyword_chunks_kb", "kb", "length"),)


def term(token: str) -> str:
    """A token as the index keeps it (a very long "word", a URL's run of letters, is cut)."""
    return token[:MAX_TERM_CHARS]


def insert_keyword_postings(s: Session, kb: str, chunks: list[tuple[str, str]]) -> None:
    """The keyword postings of (chunk id, text) pairs, written in two bulk inserts (the chunks must exist)."""
    lengths, postings = [], []
    for chunk_id, text in chunks:
        tokens = [term(t) for t in tokenize(text)] or [""]  # bm25s counts an empty chunk as one empty token
        lengths.append({"chunk_id": chunk_id, "kb": kb, "length": len(tokens)})
        postings += [
            {"chunk_id": chunk_id, "token": t, "kb": kb, "tf": n, "length": len(tokens)}
            for t, n in Counter(tokens).items()
        ]
    if lengths:
        s.connection().execute(insert(KeywordChunkRow), lengths)  # Core: no ORM bookkeeping per row
        s.connection().execute(insert(KeywordTermRow), postings)


@dataclass(frozen=True)
class KnowledgeBaseInfo:
    name: str
    collection: str
    status: str
    created_at: datetime
    documents: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    kb: str
    name: str
    content_hash: str
    size_bytes: int
    chunk_count: int
    status: str
    updated_at: datetime
    pages: int | None = None

    @property
    def kind(self) -> str:
        """The file type as users call it: PDF, DOCX, MD..."""
        suffix = self.name.rsplit(".", 1)[-1] if "." in self.name else ""
        return suffix.upper() or "TEXT"


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk as stored: its id, text and metadata (document, position, ordinal)."""

    id: str
    text: str
    metadata: dict[str, Any]


def _info(row: DocumentRow) -> DocumentInfo:
    return DocumentInfo(
        row.id,
        row.kb,
        row.name,
        row.content_hash,
        row.size_bytes,
        row.chunk_count,
        row.status,
        row.updated_at,
        row.pages,
    )


def _lease() -> dict[str, Any]:
    return {"lease_owner": this_writer(), "lease_expires_at": utcnow() + LEASE}


def _chunk_values(kb: str, document_id: int, chunk: ChunkRecord) -> dict[str, Any]:
    return {
        "id": chunk.id,
        "document_id": document_id,
        "kb": kb,
        "ordinal": chunk.metadata["ordinal"],
        "text": chunk.text,
        "meta": chunk.metadata,
    }


def _kb_info(row: KnowledgeBaseRow, documents: int = 0, chunks: int = 0) -> KnowledgeBaseInfo:
    return KnowledgeBaseInfo(row.name, row.collection, row.status, row.created_at, documents, chunks)


class DocumentRegistry:
    """SQL bookkeeping of documents and their chunks, one transaction per change."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # ---- knowledge bases -------------------------------------------------------------------
    @property
    def sessions(self) -> sessionmaker[Session]:
        """For the keyword index's postings (knowledge.keyword), which live beside the chunks."""
        return self._sessions

    def knowledge_base(self, name: str) -> KnowledgeBaseInfo | None:
        with self._sessions() as s:
            row = s.scalar(select(KnowledgeBaseRow).where(KnowledgeBaseRow.name == name))
            return _kb_info(row) if row else None

    def list_knowledge_bases(self) -> list[KnowledgeBaseInfo]:
        """The usable knowledge bases (not being deleted), with their ready documents and chunks counted."""
        with self._sessions() as s:
            counts = {
                kb: (n, c or 0)
                for kb, n, c in s.execute(
                    select(DocumentRow.kb, func.count(), func.sum(DocumentRow.chunk_count))
                    .where(DocumentRow.status == READY)
                    .group_by(DocumentRow.kb)
                )
            }
            rows = s.scalars(
                select(KnowledgeBaseRow).where(KnowledgeBaseRow.status == READY).order_by(KnowledgeBaseRow.name)
            )
            return [_kb_info(r, *counts.get(r.name, (0, 0))) for r in rows]

    def create_knowledge_base(self, name: str, collection: str) -> KnowledgeBaseInfo:
        """Raises IntegrityError when the name is taken."""
        with self._sessions.begin() as s:
            row = KnowledgeBaseRow(name=name, collection=collection, status=READY, created_at=utcnow())
            s.add(row)
        return _kb_info(row)

    def rename_knowledge_base(self, old: str, new: str) -> None:
        """One UPDATE; documents, chunks and conversations follow through ON UPDATE CASCADE."""
        with self._sessions.begin() as s:
            s.execute(update(KnowledgeBaseRow).where(KnowledgeBaseRow.name == old).values(name=new))

    def mark_knowledge_base_deleting(self, name: str) -> None:
        with self._sessions.begin() as s:
            s.execute(update(KnowledgeBaseRow).where(KnowledgeBaseRow.name == name).values(status=DELETING))

    def remove_knowledge_base(self, name: str) -> None:
        """Its documents and chunks here, and rows elsewhere that name it (conversations), go by ON DELETE CASCADE."""
        with self._sessions.begin() as s:
            s.execute(delete(ChunkRow).where(ChunkRow.kb == name))
            s.execute(delete(DocumentRow).where(DocumentRow.kb == name))
            s.execute(delete(KnowledgeBaseRow).where(KnowledgeBaseRow.name == name))

    def knowledge_bases_being_deleted(self) -> list[KnowledgeBaseInfo]:
        with self._sessions() as s:
            return [_kb_info(r) for r in s.scalars(select(KnowledgeBaseRow).where(KnowledgeBaseRow.status != READY))]

    def has_unfinished_documents(self, kb: str) -> bool:
        with self._sessions() as s:
            stmt = (
                select(func.count()).select_from(DocumentRow).where(DocumentRow.kb == kb, DocumentRow.status != READY)
            )
            return bool(s.scalar(stmt))

    # ---- documents -------------------------------------------------------------------------
    def find_by_name(self, kb: str, name: str) -> DocumentInfo | None:
        with self._sessions() as s:
            row = s.scalar(select(DocumentRow).where(DocumentRow.kb == kb, DocumentRow.name == name))
            return _info(row) if row else None

    def list_documents(self, kb: str) -> list[DocumentInfo]:
        with self._sessions() as s:
            rows = s.scalars(select(DocumentRow).where(DocumentRow.kb == kb).order_by(DocumentRow.name))
            return [_info(r) for r in rows]

    def count_documents(self, kb: str) -> int:
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(DocumentRow).where(DocumentRow.kb == kb)) or 0

    def documents_by_name(self, kb: str) -> dict[str, DocumentInfo]:
        return {d.name: d for d in self.list_documents(kb)}

    def begin_documents(self, kb: str, documents: list[tuple[str, str, int, int | None]]) -> list[int]:
        """Record (name, hash, size, pages) documents as ingesting, before any chunk is written anywhere; one
        transaction. Raises IntegrityError when a name is taken (e.g. the same file uploaded twice at once)."""
        with self._sessions.begin() as s:
            lease = _lease()
            rows = [
                DocumentRow(kb=kb, name=n, content_hash=h, size_bytes=b, pages=p, status=INGESTING, **lease)
                for n, h, b, p in documents
            ]
            s.add_all(rows)
            s.flush()
            return [row.id for row in rows]

    def complete_documents(self, chunks_by_document: dict[int, list[ChunkRecord]]) -> None:
        """Store the chunk texts and their keyword postings and mark the documents ready, in one transaction."""
        with self._sessions.begin() as s:
            for document_id, chunks in chunks_by_document.items():  # bulk inserts: no ORM object per posting
                row = s.get_one(DocumentRow, document_id)
                if chunks:
                    s.connection().execute(insert(ChunkRow), [_chunk_values(row.kb, document_id, c) for c in chunks])
                    insert_keyword_postings(s, row.kb, [(c.id, c.text) for c in chunks])
                row.chunk_count = len(chunks)
                row.status = READY

    def mark_deleting(self, document_id: int) -> None:
        """First step of a removal: from here on the document counts as absent, and a crash finishes the removal."""
        with self._sessions.begin() as s:
            s.execute(update(DocumentRow).where(DocumentRow.id == document_id).values(status=DELETING, **_lease()))

    def renew_leases(self, document_ids: list[int]) -> None:
        """This writer is still at work on these documents."""
        with self._sessions.begin() as s:
            mine = (DocumentRow.id.in_(document_ids), DocumentRow.lease_owner == this_writer())
            s.execute(update(DocumentRow).where(*mine).values(lease_expires_at=utcnow() + LEASE))

    def unfinished_documents(self, kb: str | None = None, names: list[str] | None = None) -> list[DocumentInfo]:
        """Documents left half-written or half-removed by a writer that is gone (see write_lease.abandoned)."""
        return [info for info, held in self._unfinished(kb, names) if not held]

    def held_document_ids(self) -> set[int]:
        """Documents a live writer is ingesting or removing right now."""
        return {info.id for info, held in self._unfinished() if held}

    def _unfinished(self, kb: str | None = None, names: list[str] | None = None) -> list[tuple[DocumentInfo, bool]]:
        stmt = select(DocumentRow).where(DocumentRow.status != READY)
        if kb is not None:
            stmt = stmt.where(DocumentRow.kb == kb)
        if names is not None:
            stmt = stmt.where(DocumentRow.name.in_(names))
        now = utcnow()
        with self._sessions() as s:
            return [(_info(r), not abandoned(r.lease_owner, r.lease_expires_at, now)) for r in s.scalars(stmt)]

    def documents(self, document_ids: list[int]) -> list[DocumentInfo]:
        """The given documents, in the given order."""
        with self._sessions() as s:
            rows = {r.id: r for r in s.scalars(select(DocumentRow).where(DocumentRow.id.in_(document_ids)))}
            return [_info(rows[i]) for i in document_ids]

    def remove_documents(self, document_ids: list[int]) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(ChunkRow).where(ChunkRow.document_id.in_(document_ids)))
            s.execute(delete(DocumentRow).where(DocumentRow.id.in_(document_ids)))

    def knowledge_base_names(self) -> list[str]:
        """Every knowledge base, usable or being deleted."""
        with self._sessions() as s:
            return list(s.scalars(select(KnowledgeBaseRow.name)))

    def document_chunks(self, document_id: int) -> list[ChunkRecord]:
        with self._sessions() as s:
            stmt = select(ChunkRow).where(ChunkRow.document_id == document_id).order_by(ChunkRow.ordinal)
            return [ChunkRecord(r.id, r.text, dict(r.meta)) for r in s.scalars(stmt)]

    def count_chunks(self, kb: str) -> int:
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(ChunkRow).where(ChunkRow.kb == kb)) or 0

    def all_chunk_ids(self, kb: str) -> set[str]:
        with self._sessions() as s:
            return set(s.scalars(select(ChunkRow.id).where(ChunkRow.kb == kb)))

    def ready_chunks(self, kb: str) -> list[ChunkRecord]:
        with self._sessions() as s:
            stmt = (
                select(ChunkRow)
                .join(DocumentRow)
                .where(ChunkRow.kb == kb, DocumentRow.status == READY)
                .order_by(ChunkRow.document_id, ChunkRow.ordinal)
            )
            return [ChunkRecord(r.id, r.text, dict(r.meta)) for r in s.scalars(stmt)]

    def version(self, kb: str) -> str:
        """A token that changes whenever the ready chunks of a knowledge base change."""
        with self._sessions() as s:
            stmt = select(func.count(), func.max(DocumentRow.updated_at), func.sum(DocumentRow.id)).where(
                DocumentRow.kb == kb, DocumentRow.status == READY
            )
            return json.dumps([str(v) for v in s.execute(stmt).one()])
