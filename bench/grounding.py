"""What the grounding check adds to the time until a customer sees the first sentence of an answer.

    python bench/grounding.py [--dump FILE] [--repeats N]

For each question of the trap sets (bench/answer_traps), the passages the product retrieves for it from the
bundled sample knowledge base (or the rentals set) are prepared as one turn's evidence, and the first sentence of
an answer is judged: the bundled model's own answer from a bench/answers.py `--dump` file when given, else the
reference answer. The evidence is embedded in a thread while the model writes its first sentence, so the delay a
customer sees is the judgement plus whatever part of the embedding the model's first sentence did not cover.
Before the model is asked, the question is checked against the passages (quoting.QuotePicker.unanswered: its
words, the nearest passage sentence), which waits for the passages' embeddings; a quoted answer (policy quote,
or trim's fallback) is picked from the same evidence. Printed: embedding the evidence, the question's check, the
quote's pick and judging the first sentence, p50 and p95, and last exactly
`evidence_s_p50=… judge_s_p50=… added_s_p95=…` where added is the evidence, the question's check and the
judgement together: what a customer waits for beyond the model's own time to its first sentence.
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
from chatbot.conversation.quoting import QuotePicker
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


def measure(repeats: int, dump: Path | None) -> dict[str, list[float]]:
    answers = first_sentences(dump)
    times: dict[str, list[float]] = {"evidence": [], "question": [], "quote": [], "judge": []}
    for name, folder in SETS.items():
        knowledge = build_knowledge_service(KnowledgeSettings(_env_file=None, data_dir=Path(tempfile.mkdtemp())))
        IngestPipeline(knowledge).ingest_files(expand_paths([folder]), "default")
        check = GroundingCheck(knowledge.embeddings, GroundingSettings())
        quotes = QuotePicker(knowledge.embeddings, GroundingSettings())  # its word vectors warm up over the set
        for row in map(json.loads, (HERE / "answer_traps" / f"{name}.jsonl").read_text().splitlines()):
            passages = [d.page_content for d in knowledge.search("default", [row["question"]], 3)]
            sentence = answers.get(row["question"]) or (row.get("answers") or ["I could not find this."])[0]
            for _ in range(repeats):
                time_turn(check, quotes, passages, row["question"], sentence, times)
    return times


def time_turn(
    check: GroundingCheck,
    quotes: QuotePicker,
    passages: list[str],
    question: str,
    sentence: str,
    times: dict[str, list[float]],
) -> None:
    clock = time.perf_counter()
    evidence = check.evidence(passages, question)
    _ = evidence.vectors  # waits for the passages' embeddings
    for name, work in [
        ("evidence", lambda: None),
        ("question", lambda: quotes.unanswered(evidence)),
        ("quote", lambda: quotes.pick(evidence)),
        ("judge", lambda: evidence.judge(sentence)),
    ]:
        work()
        now = time.perf_counter()
        times[name].append(now - clock)
        clock = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", type=Path, help="a bench/answers.py --dump file: judge the model's own sentences")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = measure(args.repeats, args.dump)
    added = [sum(parts) for parts in zip(times["evidence"], times["question"], times["judge"], strict=True)]

    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100)[q - 1]

    for name, values in times.items():
        print(f"{name}_s p50={p(values, 50):.3f} p95={p(values, 95):.3f} (turns={len(values)})")
    evidence, judge = times["evidence"], times["judge"]
    print(f"evidence_s_p50={p(evidence, 50):.3f} judge_s_p50={p(judge, 50):.3f} added_s_p95={p(added, 95):.3f}")


if __name__ == "__main__":
    main()
