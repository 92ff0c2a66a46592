"""Hybrid retrieval: Chroma vector search and BM25 keyword search, fused by weighted reciprocal rank."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from pydantic import ConfigDict

from knowledge.keyword import KeywordIndex, tokenize
from knowledge.metrics import ERRORS
from knowledge.settings import RetrievalSettings

logger = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# Word coverage put on the cosine scale: on ../shared/eval a coverage of 0.3 separates in- from out-of-knowledge
# questions as well as a cosine similarity of 0.5 does (bench/no_answer.py --dump, docs/benchmarks.md).
COVERAGE_TO_COSINE = 0.5 / 0.3
_HAS_DIGIT = re.compile(r"[0-9]")
_HAS_LETTER = re.compile(r"[a-z]")


@dataclass(frozen=True)
class Source:
    """One retrieved chunk as the customer sees it under an answer."""

    document: str
    position: str
    snippet: str
    score: float
    chunk_id: str

    @classmethod
    def from_document(cls, doc: Document) -> Source:
        meta = doc.metadata
        return cls(
            document=meta.get("document", "?"),
            position=meta.get("position", ""),
            snippet=meta.get("snippet", doc.page_content),
            score=float(meta.get("score", 0.0)),
            chunk_id=meta.get("chunk_id", doc.id or ""),
        )


def coverage(text: str, weights: dict[str, float]) -> float:
    """The share of the question's words (Chinese characters and bigrams) found in the chunk, each word
    weighted by how telling it is in the knowledge base (IDF): a question about something the knowledge base
    never mentions covers little, however many common words it shares."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    present = set(tokenize(text))
    return round(sum(w for token, w in weights.items() if token in present) / total, 4)


def best_relevance(documents: list[Document]) -> float:
    """How well the best retrieved chunk matches the question, 0..1, comparable across questions (unlike
    rank-fusion scores): the higher of the vectors' cosine similarity and the calibrated word coverage."""
    return max((float(d.metadata.get("relevance", 0.0)) for d in documents), default=0.0)


def identifiers(query: str) -> set[str]:
    """Code-like tokens of a query (letters and digits mixed: QX005, A1234, v2), which only an exact match answers."""
    return {t for t in tokenize(query) if len(t) >= 3 and _HAS_DIGIT.search(t) and _HAS_LETTER.search(t)}


def is_mostly_chinese(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(bool(_CJK.match(c)) for c in letters) / len(letters) > 0.3


class HybridRetriever(BaseRetriever):
    """Vector + keyword retrieval over one knowledge base; returns Documents whose metadata holds the scores."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    vector_store: VectorStore
    keyword_index: Callable[[], KeywordIndex]
    settings: RetrievalSettings
    multilingual_embeddings: bool = False
    k: int | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        cfg = self.settings
        rankings: list[tuple[list[Document], float]] = []
        if self._vectors_understand(query) and cfg.vector_weight > 0:
            rankings.append((self._vector_hits(query), cfg.vector_weight))
        keyword_docs = []
        index = self.keyword_index()
        for chunk, score in index.search(query, cfg.candidates):
            keyword_docs.append(
                Document(page_content=chunk.text, metadata={**chunk.metadata, "keyword_score": round(score, 4)})
            )
        rankings.append((keyword_docs, cfg.keyword_weight))
        codes = identifiers(query)
        if codes:  # an order number or model code the customer typed must not lose to a merely similar chunk
            exact = [d for d in keyword_docs if codes <= set(tokenize(d.page_content))]
            rankings.append((exact, cfg.keyword_weight))
        fused = reciprocal_rank_fusion(rankings, cfg.rrf_k, self.k or cfg.k)
        weights = {token: index.idf(token) for token in set(tokenize(query))}
        for doc in fused:
            doc.metadata["coverage"] = coverage(doc.page_content, weights)
            calibrated = min(1.0, doc.metadata["coverage"] * COVERAGE_TO_COSINE)
            doc.metadata["relevance"] = round(max(float(doc.metadata.get("vector_score", 0.0)), calibrated), 4)
        return fused

    def _vector_hits(self, query: str) -> list[Document]:
        """The vector store's nearest chunks; none while it does not answer (a Chroma server down): the keyword
        index, which lives with the registry's chunks, still finds what it can."""
        try:
            hits = self.vector_store.similarity_search_with_score(query, k=self.settings.candidates)
        except Exception as e:  # any client error of any vector store backend: search on with keywords alone
            logger.warning("the vector store did not answer (%s: %s); searching by keywords only", type(e).__name__, e)
            ERRORS.labels(type=type(e).__name__, where="vector_search").inc()
            return []
        for doc, distance in hits:
            doc.metadata["vector_score"] = round(1.0 - float(distance), 4)  # cosine similarity
        return [doc for doc, _ in hits]

    def _vectors_understand(self, query: str) -> bool:
        return self.multilingual_embeddings or not is_mostly_chinese(query)


def reciprocal_rank_fusion(rankings: list[tuple[list[Document], float]], rrf_k: int, k: int) -> list[Document]:
    """Weighted RRF over ranked lists of chunks (keyed by chunk_id); metadata of all lists is merged."""
    fused: dict[str, float] = {}
    merged: dict[str, dict[str, Any]] = {}
    texts: dict[str, str] = {}
    for documents, weight in rankings:
        for rank, doc in enumerate(documents):
            key = doc.metadata["chunk_id"]
            fused[key] = fused.get(key, 0.0) + weight / (rrf_k + rank + 1)
            merged[key] = {**doc.metadata, **merged.get(key, {})}
            texts[key] = doc.page_content
    best = sorted(fused, key=fused.__getitem__, reverse=True)[:k]
    return [
        Document(page_content=texts[key], metadata={**merged[key], "score": round(fused[key], 5)}, id=key)
        for key in best
    ]
