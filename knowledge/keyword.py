"""The keyword index: BM25 over a knowledge base's chunks, read from postings that live in the database beside
the chunks (written with each document, removed with it), so every replica searches the same index and an upload
indexes only its own chunks. Scored as bm25s scores (Lucene's variant: k1 1.5, b 0.75): idf = ln(1 + (N - df +
0.5) / (df + 0.5)), tf part = tf / (tf + k1 (1 - b + b dl / avgdl)), summed over the query's tokens."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from knowledge.registry import (
    READY,
    ChunkRecord,
    ChunkRow,
    DocumentRow,
    KeywordChunkRow,
    KeywordTermRow,
    insert_keyword_postings,
    term,
)
from knowledge.tokens import tokenize

__all__ = ["KeywordIndex", "KeywordPostings", "tokenize"]
K1, B = 1.5, 0.75
CHEAP_SHARE = 0.05  # a word in at most this share of the chunks has its postings read in full from the start


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
        best = self._postings.keyword_scores(self._kb, weight, frequencies, (chunks, average_length), k)
        found = self._postings.ready_chunks_by_id([chunk_id for chunk_id, _ in best])
        return [(found[chunk_id], score) for chunk_id, score in best if chunk_id in found and score > 0]


class _Scoring:
    """The SQL that scores chunks for one question: BM25 summed in the database over the covering index."""

    def __init__(self, kb: str, weights: dict[str, float], average_length: float) -> None:
        self.kb, self.weights, self.average_length = kb, weights, max(average_length, 1e-9)

    def contribution(self, t: type[KeywordTermRow], tokens: list[str]) -> ColumnElement[Any]:
        """weight × tf / (tf + k1 (1 - b + b length / average length)) of one posting."""
        weight = case(*((t.token == token, self.weights[token]) for token in tokens), else_=0.0)
        return weight * t.tf / (t.tf + (K1 * (1 - B) + (K1 * B / self.average_length) * t.length))

    def best(
        self, telling: list[str], common: list[str], k: int, leaders: int | None = None, cut: float | None = None
    ) -> Select[Any]:
        """The k best chunks holding a telling word, each scored over all the words. leaders: score only the
        chunks whose telling words score best; cut: only those whose telling words score above it."""
        t = KeywordTermRow
        partial = func.sum(self.contribution(t, telling)).label("partial")
        candidates = select(t.chunk_id, partial).where(t.kb == self.kb, t.token.in_(telling)).group_by(t.chunk_id)
        if cut is not None:
            candidates = candidates.having(partial > cut)
        if leaders is not None:
            candidates = candidates.order_by(partial.desc(), t.chunk_id).limit(leaders)
        found = candidates.subquery()
        if not common:
            return select(found.c.chunk_id, found.c.partial).order_by(found.c.partial.desc(), found.c.chunk_id).limit(k)
        o = aliased(KeywordTermRow)
        score = (found.c.partial + func.coalesce(func.sum(self.contribution(o, common)), 0.0)).label("score")
        joined = and_(o.kb == self.kb, o.token.in_(common), o.chunk_id == found.c.chunk_id)
        return (
            select(found.c.chunk_id, score)
            .select_from(found.outerjoin(o, joined))
            .group_by(found.c.chunk_id, found.c.partial)
            .order_by(score.desc(), found.c.chunk_id)
            .limit(k)
        )


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
        self, kb: str, weights: dict[str, float], frequencies: dict[str, int], stats: tuple[int, float], k: int
    ) -> list[tuple[str, float]]:
        """The k best (chunk id, BM25 score), as summing every posting of the question's words would rank them,
        without reading every posting of its common words (MaxScore, Turtle and Flood 1995). A word adds less
        than its weight to any chunk, so a chunk holding only words whose weights add up to less than the k-th best
        score cannot make the k best. Two passes: the chunks of the rarest words give a floor under the k-th best
        score; then the fewest telling words that leave the others' weights under that floor are read in full,
        and the others' postings only for the chunks that can still make the k best."""
        ranked = sorted(weights, key=lambda token: (-weights[token], token))  # most telling first
        chunks, average_length = stats
        scoring = _Scoring(kb, weights, average_length)
        rare = sum(1 for token in ranked if frequencies[token] <= chunks * CHEAP_SHARE)
        while rare < len(ranked) and sum(frequencies[token] for token in ranked[:rare]) < k:
            rare += 1  # words in at least k chunks between them, or the floor would be 0
        with self._sessions() as s:
            if rare < len(ranked):
                leaders = s.execute(scoring.best(ranked[:rare], ranked[rare:], k, leaders=k)).all()
                floor = leaders[-1][1] if len(leaders) == k else 0.0  # the k-th best score is at least this
                for split in range(1, len(ranked)):
                    ceiling = sum(weights[token] for token in ranked[split:])  # the most the other words add
                    if ceiling < floor:
                        best = scoring.best(ranked[:split], ranked[split:], k, cut=floor - ceiling - 1e-9)
                        return [(chunk_id, float(score)) for chunk_id, score in s.execute(best)]
            return [(chunk_id, float(score)) for chunk_id, score in s.execute(scoring.best(ranked, [], k))]

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
                for kb in {kb for _, kb, _ in rows}:
                    insert_keyword_postings(s, kb, [(chunk_id, text) for chunk_id, k, text in rows if k == kb])
            done += len(rows)
            if len(rows) < batch:
                return done
