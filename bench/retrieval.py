"""Retrieval quality: ingest a JSONL knowledge base through the product's pipeline, score its questions.

    python bench/retrieval.py KB_JSONL QUERIES_JSONL [--limit N]

Prints recall@1, recall@5 and MRR@10 of the gold documents; the last line is exactly
`recall@1=0.xxx recall@5=0.xxx mrr@10=0.xxx queries=N`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ingest.pipeline import IngestPipeline
from knowledge.service import build_knowledge_service
from knowledge.settings import KnowledgeSettings

KB = "eval"


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def first_gold_rank(retrieved_documents: list[str], gold: set[str]) -> int | None:
    return next((rank for rank, doc in enumerate(retrieved_documents, start=1) if doc in gold), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kb_jsonl", type=Path)
    parser.add_argument("queries_jsonl", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="score only the first N questions")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragdesk-eval-") as tmp:
        settings = KnowledgeSettings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
        knowledge = build_knowledge_service(settings)
        pipeline = IngestPipeline(knowledge)
        started = time.perf_counter()
        documents = read_jsonl(args.kb_jsonl)
        knowledge.ensure_knowledge_base(KB)
        pipeline.ingest_texts(KB, ((d["doc_id"], d.get("title", ""), d["text"]) for d in documents))
        ingest_s = time.perf_counter() - started
        queries = read_jsonl(args.queries_jsonl)[: args.limit or None]
        print(f"set={args.kb_jsonl.parent.name} documents={len(documents)} ingest_s={ingest_s:.1f}")
        baselines = {"keyword_only(bm25)": {"vector_weight": 0.0}, "vector_only": {"keyword_weight": 0.0}}
        product = settings.retrieval
        for label, change in baselines.items():
            settings.retrieval = product.model_copy(update=change)
            print(f"{label}: {score(knowledge.retriever(KB, k=10), queries)}")
        settings.retrieval = product
        started = time.perf_counter()
        result = score(knowledge.retriever(KB, k=10), queries)
        print(f"hybrid: query_ms={1000 * (time.perf_counter() - started) / len(queries):.1f}")
        print(result)


def score(retriever, queries: list[dict]) -> str:  # type: ignore[no-untyped-def]
    ranks = []
    for query in queries:
        hits = retriever.invoke(query["question"])
        ranks.append(first_gold_rank([h.metadata["document"] for h in hits], set(query["gold_doc_ids"])))
    n = len(ranks)
    r1 = sum(r == 1 for r in ranks) / n
    r5 = sum(r is not None and r <= 5 for r in ranks) / n
    mrr = sum(1 / r for r in ranks if r is not None) / n
    return f"recall@1={r1:.3f} recall@5={r5:.3f} mrr@10={mrr:.3f} queries={n}"


if __name__ == "__main__":
    main()
