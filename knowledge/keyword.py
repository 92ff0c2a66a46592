"""The keyword index: BM25 over a knowledge base's chunks, read from postings that live in the database beside
the chunks (written with each document, removed with it), so every replica searches the same index and an upload
indexes only its own chunks. Scored as bm25s scores (Lucene's variant: k1 1.5, b 0.75): idf = ln(1 + (N - df +
0.5) / (df + 0.5)), tf part = tf / (tf + k1 (1 - b + b dl / avgdl)), summed over the query's tokens."""

from __future__ import annotations

import math
from collections import Counter

from knowledge.registry import ChunkRecord, DocumentRegistry, term
from knowledge.tokens import tokenize

__all__ = ["KeywordIndex", "tokenize"]
K1, B = 1.5, 0.75


class KeywordIndex:
    """One knowledge base's keyword search; holds nothing but what the last search read (document frequencies)."""

    def __init__(self, registry: DocumentRegistry, kb: str) -> None:
        self._registry = registry
        self._kb = kb
        self._df: dict[str, int] = {}
        self._chunks = 0

    @property
    def chunks(self) -> list[ChunkRecord]:
        """Every chunk of a ready document the index holds postings for."""
        return self._registry.indexed_chunks(self._kb)

    def idf(self, token: str) -> float:
        """How telling a word is in this knowledge base; words it never contains weigh the most."""
        token = term(token)
        if token not in self._df:
            self._chunks = self._registry.keyword_stats(self._kb)[0]
            self._df.update(self._registry.document_frequencies(self._kb, [token]))
        return math.log((self._chunks + 1) / (self._df.get(token, 0) + 0.5))

    def search(self, query: str, k: int) -> list[tuple[ChunkRecord, float]]:
        asked = Counter(term(t) for t in tokenize(query))
        if not asked:
            return []
        chunks, average_length = self._registry.keyword_stats(self._kb)
        self._chunks = chunks
        self._df = self._registry.document_frequencies(self._kb, list(asked))
        if not chunks or not self._df:
            return []
        weight = {t: asked[t] * math.log(1 + (chunks - df + 0.5) / (df + 0.5)) for t, df in self._df.items()}
        best = self._registry.keyword_scores(self._kb, weight, average_length, k, K1, B)
        found = self._registry.ready_chunks_by_id([chunk_id for chunk_id, _ in best])
        return [(found[chunk_id], score) for chunk_id, score in best if chunk_id in found and score > 0]
