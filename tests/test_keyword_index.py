"""The keyword index in the database: the same BM25 scores as bm25s over the same chunks, postings written with a
document and gone with it, a renamed knowledge base searched under its new name, and chunks stored before the
index lived in the database indexed on the next start; on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from typing import Any

import bm25s
import pytest
from sqlalchemy import delete, func, select

from ingest.pipeline import expand_paths
from knowledge.registry import ChunkRecord, KeywordChunkRow, KeywordTermRow
from knowledge.tokens import tokenize
from tests.helpers.paths import SAMPLES

pytestmark = pytest.mark.both_databases
QUESTIONS = [
    "How long do I have to return an item?",
    "Is return shipping free?",
    "kettle descaling vinegar",
    "退货 运费",
    "warranty claim receipt",
]


def postings(services: Any) -> int:
    with services.knowledge.registry._sessions() as s:
        return s.scalar(select(func.count()).select_from(KeywordTermRow)) or 0


def test_scores_are_bm25s_scores_over_the_same_chunks(services: Any, pipeline: Any) -> None:
    pipeline.ingest_files(expand_paths([SAMPLES]), "default")
    index = services.knowledge.keyword_index("default")
    chunks = services.knowledge.registry.ready_chunks("default")
    reference = bm25s.BM25()  # the in-memory index this one replaced: Lucene's BM25, k1 1.5, b 0.75
    reference.index([tokenize(c.text) or [""] for c in chunks], show_progress=False)
    for question in QUESTIONS:
        ids, scores = reference.retrieve([tokenize(question)], k=5, show_progress=False)
        expected = {chunks[i].id: float(s) for i, s in zip(ids[0], scores[0], strict=True) if s > 0}
        found = {chunk.id: score for chunk, score in index.search(question, 5)}
        assert found.keys() == expected.keys(), question
        for chunk_id, score in found.items():
            assert score == pytest.approx(expected[chunk_id], rel=1e-4), question


def test_postings_come_and_go_with_their_document(services: Any, pipeline: Any, tmp_path: Any) -> None:
    pipeline.ingest_files(expand_paths([SAMPLES / "returns-and-refunds.md"]), "default")
    before = postings(services)
    fact = tmp_path / "zorblax.md"
    fact.write_text("# Zorblax\n\nThe Zorblax loyalty card gives 17 percent off.")
    pipeline.ingest_files([fact], "default")
    added = postings(services) - before
    assert 0 < added < 20  # only the new chunk's tokens were indexed
    [(hit, _)] = services.knowledge.keyword_index("default").search("zorblax loyalty", 5)
    assert "17 percent" in hit.text

    assert services.knowledge.remove_document("default", "zorblax.md")
    assert postings(services) == before
    assert services.knowledge.keyword_index("default").search("zorblax", 5) == []

    services.knowledge.rename_knowledge_base("default", "shop")
    assert services.knowledge.keyword_index("shop").search("refund", 5)
    assert services.knowledge.keyword_index("default").search("refund", 5) == []


def test_chunks_stored_without_postings_are_indexed_on_the_next_start(
    services: Any, pipeline: Any, make_services: Any
) -> None:
    pipeline.ingest_files(expand_paths([SAMPLES / "returns-and-refunds.md"]), "default")
    expected = services.knowledge.keyword_index("default").search("refund", 5)
    with services.knowledge.registry._sessions.begin() as s:  # as a database from before revision 0003
        s.execute(delete(KeywordTermRow))
        s.execute(delete(KeywordChunkRow))
    assert services.knowledge.keyword_index("default").search("refund", 5) == []

    restarted = make_services()
    assert restarted.knowledge.keyword_index("default").search("refund", 5) == expected


def test_skipping_common_words_postings_finds_the_same_best_chunks(services: Any) -> None:
    """The k best of 600 chunks of Zipf-distributed words (the common words' postings mostly skipped) score
    exactly as bm25s scores every chunk, for short and long questions, k 5 and 50."""
    rng = random.Random(20261207)

    def words(n: int) -> list[str]:
        return [f"w{int(3000 ** rng.random())}" for _ in range(n)]

    texts = [" ".join(words(40)) for _ in range(600)]
    registry = services.knowledge.registry  # the registry alone: the keyword index needs no vectors
    for n in range(0, len(texts), 100):
        (document_id,) = registry.begin_documents("default", [(f"d{n}.txt", f"{n:064d}", 1, None)])
        part = texts[n : n + 100]
        records = [ChunkRecord(f"c{n + i}", t, {"ordinal": i}) for i, t in enumerate(part)]
        registry.complete_documents({document_id: records})
    ids = {c.text: c.id for c in services.knowledge.registry.ready_chunks("default")}
    reference = bm25s.BM25()
    reference.index([tokenize(t) for t in texts], show_progress=False)
    index = services.knowledge.keyword_index("default")
    for _ in range(25):
        question = " ".join(words(rng.randint(1, 7)))
        expected = reference.get_scores(tokenize(question))
        by_id = {ids[t]: float(score) for t, score in zip(texts, expected, strict=True)}
        for k in (5, 50):
            found = index.search(question, k)
            best = sorted((s for s in expected if s > 0), reverse=True)[:k]
            assert [score for _, score in found] == pytest.approx(best, abs=1e-4), question
            assert all(by_id[chunk.id] == pytest.approx(score, abs=1e-4) for chunk, score in found), question
