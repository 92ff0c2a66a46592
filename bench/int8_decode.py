"""Answer quality and speed of int8 decode weights on the CPU (RAGDESK_LLM__LOCAL__CPU_INT8_DECODE) against bf16.

    python bench/int8_decode.py            # 24 E-Manual questions, each with its gold sections as context
    python bench/int8_decode.py --n 50 --set ../shared/eval/stackfaq

The bundled model answers each question twice through the app's local-model path (the batching scheduler, greedy),
once with int8 decode weights and once with bf16 only. Printed: token F1 of each against the set's known answers
(SQuAD-style normalisation), how many answers are word-for-word the same, and the median decode speed.
Retrieval is left out (the gold sections are the context) so that only the weights differ.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def token_f1(prediction: str, answers: list[str]) -> float:
    def words(text: str) -> list[str]:
        return re.sub(r"\b(a|an|the)\b", " ", re.sub(r"[^a-z0-9 ]", " ", text.lower())).split()

    best = 0.0
    for answer in answers:
        predicted, gold = words(prediction), words(answer)
        common = sum((collections.Counter(predicted) & collections.Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def prompts(eval_set: Path, n: int) -> list[tuple[list, list[str]]]:
    from langchain_core.messages import HumanMessage, SystemMessage

    from chatbot.conversation.templates import ENGLISH_DEFAULT

    docs = {d["doc_id"]: d for d in map(json.loads, (eval_set / "kb.jsonl").read_text().splitlines())}
    queries = [json.loads(line) for line in (eval_set / "queries.jsonl").read_text().splitlines()][:n]
    out = []
    for query in queries:
        context = "\n\n".join(docs[d]["text"][:1500] for d in query["gold_doc_ids"][:2])
        system = ENGLISH_DEFAULT.system_prompt.format(kb=eval_set.name, context=context)
        out.append(([SystemMessage(system), HumanMessage(query["question"])], query["answers"]))
    return out


def answer_all(int8: bool, cases: list, models_dir: Path, new_tokens: int) -> tuple[list[str], list[float]]:
    from chatbot.llm.factory import build_local_model
    from chatbot.settings import LLMSettings

    local = {"device": "cpu", "cpu_dtype": "bfloat16", "cpu_int8_decode": int8}
    llm = build_local_model(LLMSettings(backend="local", local=local), models_dir)
    print(f"{llm.quantization}: answering {len(cases)} questions", flush=True)
    answers, rates = [], []
    for messages, _ in cases:
        first, pieces = 0.0, []
        for chunk in llm.stream(messages, max_completion_tokens=new_tokens):
            first = first or time.perf_counter()
            pieces.append(str(chunk.content))
        if len(pieces) > 8:
            rates.append((len(llm.tokenizer.encode("".join(pieces))) - 1) / (time.perf_counter() - first))
        answers.append("".join(pieces))
    llm.scheduler.close(wait_s=10)
    return answers, rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=Path("../shared/eval/emanual_s10"))
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"))
    args = parser.parse_args()
    from chatbot.llm.runtime.cpu_threads import single_core_by_default

    single_core_by_default()  # as the app does on the CPU
    cases = prompts(args.set, args.n)
    results = {int8: answer_all(int8, cases, args.models_dir, args.new_tokens) for int8 in (False, True)}
    for int8, (answers, rates) in results.items():
        f1 = statistics.mean(token_f1(a, gold) for a, (_, gold) in zip(answers, cases, strict=True))
        print(f"{'int8 decode' if int8 else 'bf16':12s} F1={f1:.3f} decode_tok_s={statistics.median(rates):.1f}")
    same = sum(a == b for a, b in zip(results[False][0], results[True][0], strict=True))
    print(f"word-for-word the same: {same} of {len(cases)}")


if __name__ == "__main__":
    main()
