"""What the grounding check adds to the time until a customer sees the first sentence of an answer.

    python bench/grounding.py [--dump FILE] [--repeats N]

For each question of the trap sets (bench/answer_traps), the passages the product retrieves for it from the
bundled sample knowledge base (or the rentals set) are prepared as one turn's evidence, and the first sentence of
an answer is judged: the bundled model's own answer from a bench/answers.py `--dump` file when given, else the
reference answer. The evidence is embedded in a thread while the model writes its first sentence, so the delay a
customer sees is the judgement plus whatever part of the embedding the model's first sentence did not cover.
Printed: embedding the evidence and judging the first sentence, p50 and p95, and last exactly
`evidence_s_p50=… judge_s_p50=… added_s_p95=…` where added is both together (the worst case: a first sentence
written before any passage was embedded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from chatbot.conversation.grounding import GroundingCheck, split_sentences
from chatbot.settings import GroundingSettings
from ingest.pipeline import IngestPipeline, expand_paths
from knowledge.service import build_knowledge_service
from knowledge.settings import KnowledgeSettings

HERE = Path(__file__).resolve().parent
SETS = {"samples": HERE.parent / "knowledge" / "samples", "rentals": HERE / "answer_traps" / "rentals"}


def first_sentences(dump: Path | None) -> dict[str, str]:
    """question → the first sentence of the model's answer in a bench/answers.py dump (empty without one)."""
    if dump is None:
        return {}
    rows = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines() if line.strip()]
    found = {}
    for row in rows:
        done, rest = split_sentences(str(row.get("answer", "")))
        found[row.get("question") or row["text"]] = (done or [rest])[0]
    return found


def measure(repeats: int, dump: Path | None) -> tuple[list[float], list[float]]:
    answers = first_sentences(dump)
    evidence_s, judge_s = [], []
    for name, folder in SETS.items():
        knowledge = build_knowledge_service(KnowledgeSettings(_env_file=None, data_dir=Path(tempfile.mkdtemp())))
        IngestPipeline(knowledge).ingest_files(expand_paths([folder]), "default")
        check = GroundingCheck(knowledge.embeddings, GroundingSettings())
        for row in map(json.loads, (HERE / "answer_traps" / f"{name}.jsonl").read_text().splitlines()):
            passages = [d.page_content for d in knowledge.search("default", [row["question"]], 3)]
            sentence = answers.get(row["question"]) or (row.get("answers") or ["I could not find this."])[0]
            for _ in range(repeats):
                started = time.perf_counter()
                evidence = check.evidence(passages, row["question"])
                evidence.judge("warm-up")  # waits for the passages' embeddings
                evidence_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                evidence.judge(sentence)
                judge_s.append(time.perf_counter() - started)
    return evidence_s, judge_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", type=Path, help="a bench/answers.py --dump file: judge the model's own sentences")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    evidence_s, judge_s = measure(args.repeats, args.dump)
    added = [e + j for e, j in zip(evidence_s, judge_s, strict=True)]

    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    print(f"turns={len(added)} evidence_s p50={p(evidence_s, 50):.3f} p95={p(evidence_s, 95):.3f}")
    print(f"judge_s p50={p(judge_s, 50):.3f} p95={p(judge_s, 95):.3f}")
    print(f"evidence_s_p50={p(evidence_s, 50):.3f} judge_s_p50={p(judge_s, 50):.3f} added_s_p95={p(added, 95):.3f}")


if __name__ == "__main__":
    main()
