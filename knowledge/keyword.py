"""The keyword index: BM25 over a knowledge base's chunks, read from postings that live in the database beside
the chunks (written with each document, removed with it), so every replica searches the same index and an upload
indexes only its own chunks. Scored as bm25s scores (Lucene's variant: k1 1.5, b 0.75): idf = ln(1 + (N - df +
0.5) / (df + 0.5)), tf part = tf / (tf + k1 (1 - b + b dl / avgdl)), summed over the query's tokens."""

from __future__ import annotations

import math
from collections import Counter

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.registry import (
    READY,
    ChunkRecord,
    ChunkRow,
    DocumentRow,
    KeywordChunkRow,
    KeywordTermRow,
    keyword_rows,
    term,
)
from knowledge.tokens import tokenize

__all__ = ["KeywordIndex", "KeywordPostings", "tokenize"]
K1, B = 1.5, 0.75


class KeywordIndex:
    """One knowledge base's keyword search; holds nothing but what the last search read (document frequencies)."""

    def __init__(self, postings: KeywordPostings, kb: str) -> None:
        self._postings = postings
        self._kb = kb
        self._df: dict[str, int] = {}
        self._chunks = 0

    @property
    def chunks(self) -> list[ChunkRecord]:
        """Every chunk of a ready document the index holds postings for."""
        return self._postings.indexed_chunks(self._kb)

    def idf(self, token: str) -> float:
        """How telling a word is in this knowledge base; words it never contains weigh the most."""
        token = term(token)
        if token not in self._df:
            self._chunks = self._postings.keyword_stats(self._kb)[0]
            self._df.update({token: 0, **self._postings.document_frequencies(self._kb, [token])})
        return math.log((self._chunks + 1) / (self._df.get(token, 0) + 0.5))

    def search(self, query: str, k: int) -> list[tuple[ChunkRecord, float]]:
        asked = Counter(term(t) for t in tokenize(query))
        if not asked:
            return []
        chunks, average_length = self._postings.keyword_stats(self._kb)
        self._chunks = chunks
        frequencies = self._postings.document_frequencies(self._kb, list(asked))
        self._df = {**dict.fromkeys(asked, 0), **frequencies}  # idf() of an absent word asks the database nothing
        if not chunks or not frequencies:
            return []
        weight = {t: asked[t] * math.log(1 + (chunks - df + 0.5) / (df + 0.5)) for t, df in frequencies.items()}
        best = self._postings.keyword_scores(self._kb, weight, average_length, k, K1, B)
        found = self._postings.ready_chunks_by_id([chunk_id for chunk_id, _ in best])
        return [(found[chunk_id], score) for chunk_id, score in best if chunk_id in found and score > 0]


class KeywordPostings:
    """The SQL behind the keyword index: statistics, document frequencies, scores summed in the database."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def keyword_stats(self, kb: str) -> tuple[int, float]:
        """(chunks indexed, their average length in tokens)."""
        with self._sessions() as s:
            count, average = s.execute(
                select(func.count(), func.avg(KeywordChunkRow.length)).where(KeywordChunkRow.kb == kb)
            ).one()
            return int(count), float(average or 0.0)

    def document_frequencies(self, kb: str, tokens: list[str]) -> dict[str, int]:
        with self._sessions() as s:
            stmt = (
                select(KeywordTermRow.token, func.count())
                .where(KeywordTermRow.kb == kb, KeywordTermRow.token.in_(tokens))
                .group_by(KeywordTermRow.token)
            )
            return {token: int(n) for token, n in s.execute(stmt)}

    def keyword_scores(
        self, kb: str, weights: dict[str, float], average_length: float, k: int, k1: float, b: float
    ) -> list[tuple[str, float]]:
        """The k best (chunk id, BM25 score): sum over the query's tokens of weight × tf / (tf + k1 (1 - b + b
        length / average length)), added up in the database (one indexed scan, no rows to Python)."""
        t = KeywordTermRow
        weight = case(*((t.token == token, w) for token, w in weights.items()), else_=0.0)
        norm = k1 * (1 - b) + (k1 * b / max(average_length, 1e-9)) * t.length
        score = func.sum(weight * t.tf / (t.tf + norm)).label("score")
        stmt = (
            select(t.chunk_id, score)
            .where(t.kb == kb, t.token.in_(list(weights)))
            .group_by(t.chunk_id)
            .order_by(score.desc(), t.chunk_id)
            .limit(k)
        )
        with self._sessions() as s:
            return [(chunk_id, float(value)) for chunk_id, value in s.execute(stmt)]

    def ready_chunks_by_id(self, chunk_ids: list[str]) -> dict[str, ChunkRecord]:
        with self._sessions() as s:
            stmt = select(ChunkRow).join(DocumentRow).where(ChunkRow.id.in_(chunk_ids), DocumentRow.status == READY)
            return {r.id: ChunkRecord(r.id, r.text, dict(r.meta)) for r in s.scalars(stmt)}

    def indexed_chunks(self, kb: str) -> list[ChunkRecord]:
        with self._sessions() as s:
            stmt = (
                select(ChunkRow)
                .join(KeywordChunkRow, KeywordChunkRow.chunk_id == ChunkRow.id)
                .join(DocumentRow)
                .where(ChunkRow.kb == kb, DocumentRow.status == READY)
            )
            return [ChunkRecord(r.id, r.text, dict(r.meta)) for r in s.scalars(stmt)]

    def index_unindexed_chunks(self, batch: int = 2000) -> int:
        """Postings for chunks stored without them (a database from before the keyword index lived here)."""
        done = 0
        while True:
            with self._sessions.begin() as s:
                rows = s.execute(
                    select(ChunkRow.id, ChunkRow.kb, ChunkRow.text)
                    .outerjoin(KeywordChunkRow, KeywordChunkRow.chunk_id == ChunkRow.id)
                    .where(KeywordChunkRow.chunk_id.is_(None))
                    .limit(batch)
                ).all()
                s.add_all(r for chunk_id, kb, text in rows for r in keyword_rows(kb, chunk_id, text))
            done += len(rows)
            if len(rows) < batch:
                return done
