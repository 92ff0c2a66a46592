"""No-answer policy: does the relevance threshold let in-knowledge questions through and stop the others?

    python bench/no_answer.py [--threshold T] [--limit N]

For each evaluation set in ../shared/eval, its documents are ingested through the product's pipeline
into a knowledge base of its own; the set's own questions are in-KB questions, the other sets'
questions are out-of-KB questions for it. A question is answered when its best retrieved chunk
(the template's k, default 3) clears the threshold, exactly the test ChatService makes. Prints, per set
and threshold, the share of in-KB questions answered and of out-of-KB questions refused; the last
line is exactly `answered_in_kb=0.xx refused_out_of_kb=0.xx` at the given (default: the product's)
threshold, pooled over all sets.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from chatbot.conversation.templates import DEFAULT_RELEVANCE_THRESHOLD, ENGLISH_DEFAULT
from ingest.pipeline import IngestPipeline
from knowledge.retriever import best_relevance
from knowledge.service import build_knowledge_service
from knowledge.settings import KnowledgeSettings

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
SWEEP = [0.35, 0.4, 0.45, 0.5, 0.55, 0.6]


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=DEFAULT_RELEVANCE_THRESHOLD)
    parser.add_argument("--limit", type=int, default=300, help="questions sampled per set (0: all)")
    parser.add_argument("--eval-dir", type=Path, default=EVAL)
    parser.add_argument("--dump", type=Path, help="write each question's best vector score and coverage (JSONL)")
    args = parser.parse_args()

    sets = sorted(p for p in args.eval_dir.iterdir() if (p / "kb.jsonl").exists())
    rng = random.Random(0)
    questions = {}
    for folder in sets:
        queries = [q["question"] for q in read_jsonl(folder / "queries.jsonl") if q["question"].strip()]
        questions[folder.name] = rng.sample(queries, min(args.limit, len(queries))) if args.limit else queries

    scores: dict[str, tuple[list[float], list[float]]] = {}
    dump: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="ragdesk-noanswer-") as tmp:
        settings = KnowledgeSettings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
        knowledge = build_knowledge_service(settings)
        pipeline = IngestPipeline(knowledge)
        for folder in sets:
            kb = folder.name
            knowledge.ensure_knowledge_base(kb)
            documents = read_jsonl(folder / "kb.jsonl")
            pipeline.ingest_texts(kb, ((d["doc_id"], d.get("title", ""), d["text"]) for d in documents))
            retriever = knowledge.retriever(kb, k=ENGLISH_DEFAULT.k)
            inside = [judge(retriever, q, dump, kb, "in") for q in questions[kb]]
            outside = [
                judge(retriever, q, dump, kb, "out") for name in questions if name != kb for q in questions[name]
            ]
            scores[kb] = (inside, outside)
            print(f"set={kb} documents={len(documents)} in_kb={len(inside)} out_of_kb={len(outside)}")

    for threshold in sorted({*SWEEP, args.threshold}):
        row = [f"threshold={threshold:.2f}"]
        for kb, (inside, outside) in scores.items():
            row.append(
                f"{kb}: answered {share(inside, threshold, True):.3f} refused {share(outside, threshold, False):.3f}"
            )
        print("  ".join(row))
    if args.dump:
        args.dump.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in dump))
    inside_all = [s for inside, _ in scores.values() for s in inside]
    outside_all = [s for _, outside in scores.values() for s in outside]
    print(
        f"answered_in_kb={share(inside_all, args.threshold, True):.2f} "
        f"refused_out_of_kb={share(outside_all, args.threshold, False):.2f}"
    )


def judge(retriever, question: str, dump: list[dict], kb: str, side: str) -> float:  # type: ignore[no-untyped-def]
    hits = retriever.invoke(question)
    dump.append(
        {
            "kb": kb,
            "side": side,
            "question": question,
            "vector": max((h.metadata.get("vector_score", 0.0) for h in hits), default=0.0),
            "coverage": max((h.metadata.get("coverage", 0.0) for h in hits), default=0.0),
        }
    )
    return best_relevance(hits)


def share(relevances: list[float], threshold: float, answered: bool) -> float:
    return sum((r >= threshold) == answered for r in relevances) / len(relevances)


if __name__ == "__main__":
    main()
