"""Answer correctness: does the product say what its documents say, and hand off what they do not?

    python bench/answers.py --kb FOLDER --questions FILE   # one document folder and its questions
    python bench/answers.py --traps                        # both trap sets of bench/answer_traps, pooled
    python bench/answers.py --stackfaq --limit 40          # ../shared/eval/stackfaq, its first 40 questions
    python bench/answers.py --traps-zh                     # the Chinese trap set over knowledge/samples_zh
    python bench/answers.py --cmrc --limit 100             # ../shared/eval/cmrc2018_trial, its first 100 questions

    --backend local|fake   local (default): the bundled SmolLM2-135M on the CPU; fake: plumbing check only
    --grounding off|on|trim|refuse|quote
                           the grounding check: off (default) sets its policy to off, on keeps the product's
                           default grounding settings, a policy's name sets that policy; "on" stops with a
                           message where there is no check
    --stackfaq-dir DIR     where --stackfaq finds kb.jsonl and queries.jsonl (default ../shared/eval/stackfaq)
    --models-dir DIR       cache of the converted bundled model (default /tmp/ragdesk-bench-models)
    --verbose              one line per question
    --dump FILE            every reply in full, with its scores, as JSONL

Question files are JSONL: {"question": ..., "answers": [short reference answers]} for questions the documents
answer, {"question": ..., "refuse": true} for questions they do not; an optional "kind" names the trap (number,
date, negation, condition, two-document, paraphrase, out-of-kb). Each set's documents go through the product's
own ingest pipeline into a knowledge base of their own, in a temporary data directory built with the production
wiring (chatbot.wiring.build_services); each question is asked as a new conversation through ChatService, the
path the REST API takes.

A reply is answered unless the product handed off. An answered in-KB reply is scored against its best
reference: SQuAD token F1 (lowercase, no punctuation, no articles, whitespace tokens) and "contains" (the
normalized reference is a substring of the normalized answer). Wrong: answered, and either neither contains a
reference nor reaches F1 0.5, or the question was marked refuse. Metrics: answered_in_kb = answered / in-KB
questions; wrong_rate = wrong / all questions; refused_out_of_kb = refused / refuse-marked questions (1.00 when
a set has none); f1 = mean F1 over answered in-KB questions. Prints a line per set, a breakdown per kind, the
mean time to first token, and last, exactly: `answered_in_kb=0.xx wrong_rate=0.xx refused_out_of_kb=0.xx f1=0.xx`.

Chinese questions (detected from their text) are scored as the CMRC 2018 evaluation script scores them: text
lowercased, punctuation (Chinese and English) removed, traditional characters read as simplified, split into
characters (and English words); F1 from the longest common substring of the reply and a reference; "contains" on
that normalized text. A run with Chinese questions prints the metrics per language instead, the Chinese line
last: `lang=zh answered_in_kb=0.xx wrong_rate=0.xx refused_out_of_kb=0.xx f1=0.xx`, after a line saying what
share of the replies to Chinese questions were in Chinese.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from chatbot.conversation.language import CHINESE, detect_language
from chatbot.conversation.service import ChatService
from chatbot.insights.answer_scoring import F1_RIGHT, reference_match
from chatbot.services import Services
from chatbot.settings import Settings
from chatbot.wiring import build_services
from chatbot.wiring import grounding_policy as resolved_policy
from ingest.pipeline import IngestPipeline, expand_paths

ROOT = Path(__file__).resolve().parent.parent
TRAPS = ROOT / "bench" / "answer_traps"
TRAP_SETS = [
    ("samples", ROOT / "knowledge" / "samples", TRAPS / "samples.jsonl"),
    ("rentals", TRAPS / "rentals", TRAPS / "rentals.jsonl"),
]
ZH_TRAP_SETS = [("zh", ROOT / "knowledge" / "samples_zh", TRAPS / "zh.jsonl")]
STACKFAQ = ROOT.parent / "shared" / "eval" / "stackfaq"
CMRC = ROOT.parent / "shared" / "eval" / "cmrc2018_trial"
MODELS_DIR = Path(tempfile.gettempdir()) / "ragdesk-bench-models"
OWNER = "answers-bench"


@dataclass(frozen=True)
class Question:
    text: str
    answers: list[str]
    refuse: bool
    kind: str

    @property
    def language(self) -> str:
        return detect_language(self.text)


@dataclass(frozen=True)
class QuestionSet:
    name: str
    documents: Path
    questions: list[Question]


@dataclass(frozen=True)
class Reply:
    question: Question
    answer: str
    answered: bool
    f1: float
    contains: bool
    first_token_s: float | None

    @property
    def wrong(self) -> bool:
        return self.answered and (self.question.refuse or not (self.contains or self.f1 >= F1_RIGHT))


# ---- scoring (chatbot.insights.answer_scoring: the evaluation gate scores the same way) ----------------
def score(question: Question, answer: str, answered: bool, first_token_s: float | None) -> Reply:
    f1, contains = reference_match(answer, question.answers, chinese=question.language == CHINESE)
    return Reply(question, answer, answered, f1, contains, first_token_s)


def metrics(replies: list[Reply]) -> dict[str, float]:
    in_kb = [r for r in replies if not r.question.refuse]
    out_of_kb = [r for r in replies if r.question.refuse]
    answered = [r for r in in_kb if r.answered]
    return {
        "answered_in_kb": len(answered) / len(in_kb) if in_kb else 0.0,
        "wrong_rate": sum(r.wrong for r in replies) / len(replies) if replies else 0.0,
        "refused_out_of_kb": sum(not r.answered for r in out_of_kb) / len(out_of_kb) if out_of_kb else 1.0,
        "f1": statistics.fmean(r.f1 for r in answered) if answered else 0.0,
    }


def metrics_line(replies: list[Reply]) -> str:
    return " ".join(f"{name}={value:.2f}" for name, value in metrics(replies).items())


# ---- question sets --------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_questions(path: Path) -> list[Question]:
    return [
        Question(row["question"], list(row.get("answers", [])), bool(row.get("refuse")), row.get("kind", "untagged"))
        for row in read_jsonl(path)
        if row["question"].strip()
    ]


def cmrc_set(source: Path, limit: int, folder: Path) -> QuestionSet:
    """The CMRC 2018 trial set's paragraphs as Markdown files, and its first questions (all answered by them)."""
    for document in read_jsonl(source / "kb.jsonl"):
        (folder / f"{document['doc_id']}.md").write_text(as_markdown(document), encoding="utf-8")
    rows = read_jsonl(source / "queries.jsonl")
    rows = rows[:limit] if limit else rows
    return QuestionSet("cmrc", folder, [Question(r["question"], list(r["answers"]), False, "cmrc") for r in rows])


def stackfaq_set(source: Path, limit: int, folder: Path) -> QuestionSet:
    """StackFAQ's documents written out as Markdown files (ingested like any upload), and its first questions."""
    for document in read_jsonl(source / "kb.jsonl"):
        (folder / f"{document['doc_id']}.md").write_text(as_markdown(document), encoding="utf-8")
    rows = read_jsonl(source / "queries.jsonl")
    rows = rows[:limit] if limit else rows
    questions = [Question(r["question"], r["answers"], False, "stackfaq") for r in rows if r["question"].strip()]
    return QuestionSet("stackfaq", folder, questions)


def as_markdown(document: dict) -> str:
    title, text = document.get("title", "").strip(), document["text"].strip()
    if title and text.startswith(title):
        text = text[len(title) :].lstrip()
    return f"# {title or document['doc_id']}\n\n{text}\n"


# ---- running through the product ------------------------------------------------------------------------
def grounding_settings(mode: str) -> dict[str, Any]:
    """Settings for the grounding check: off sets its policy to "off", on keeps the product's defaults.
    Stops the bench when there is no check to switch on, or no policy to switch it with."""
    field = Settings.model_fields.get("grounding")
    if field is None:
        if mode == "on":
            sys.exit("--grounding on: the grounding check is not built yet (Settings has no grounding section).")
        return {}
    if "policy" not in getattr(field.annotation, "model_fields", {}):
        sys.exit("--grounding: Settings.grounding has no 'policy' field; teach bench/answers.py how to switch it.")
    return {} if mode == "on" else {"grounding": {"policy": mode}}


def grounding_policy(settings: Settings) -> str:
    section = getattr(settings, "grounding", None)
    if section is None:
        return "none (not built)"
    return f"{section.policy} ({resolved_policy(settings)})" if section.policy == "auto" else str(section.policy)


def open_services(args: argparse.Namespace, data_dir: Path) -> Services:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=data_dir,
        ingest_samples=False,
        models_dir=args.models_dir,
        llm={"backend": args.backend},
        **grounding_settings(args.grounding),
    )
    return build_services(settings)


def ingest(services: Services, question_set: QuestionSet) -> str:
    """The set's documents in a knowledge base of their own; returns its name."""
    started = time.perf_counter()
    kb = services.knowledge.ensure_knowledge_base(question_set.name).name
    report = IngestPipeline(services.knowledge).ingest_files(expand_paths([question_set.documents]), kb)
    for outcome in report.failed:
        print(f"  ingest failed: {outcome.name}: {outcome.detail}")
    print(f"set={question_set.name} ingest: {report.summary()} in {time.perf_counter() - started:.1f} s")
    return kb


def ask(chat: ChatService, kb: str, question: Question) -> Reply:
    conversation = chat.new_conversation(OWNER, kb)
    result = chat.answer(OWNER, conversation.id, question.text)
    return score(question, result.answer, result.answered, result.timings.first_token_s)


def run_set(services: Services, question_set: QuestionSet, verbose: bool) -> list[Reply]:
    kb = ingest(services, question_set)
    started, replies = time.perf_counter(), []
    for question in question_set.questions:
        replies.append(ask(services.chat, kb, question))
        if verbose:
            print(reply_line(replies[-1]))
    print(set_line(question_set.name, replies, time.perf_counter() - started))
    return replies


# ---- report ---------------------------------------------------------------------------------------------
def reply_line(reply: Reply) -> str:
    answer = " ".join(reply.answer.split())[:80]
    verdict = "refused " if not reply.answered else f"answered f1={reply.f1:.3f}"
    wrong = "WRONG" if reply.wrong else "ok   "
    return f"  [{reply.question.kind}] {verdict} {wrong} | {reply.question.text} | {answer}"


def set_line(name: str, replies: list[Reply], seconds: float) -> str:
    refuse = sum(r.question.refuse for r in replies)
    note = "" if refuse else " (no refuse-marked questions: refused_out_of_kb shown as 1.00)"
    return (
        f"set={name} questions={len(replies)} in_kb={len(replies) - refuse} refuse={refuse} "
        f"asked in {seconds:.0f} s: {metrics_line(replies)}{note}"
    )


def kind_lines(replies: Iterable[Reply]) -> list[str]:
    by_kind: dict[str, list[Reply]] = {}
    for reply in replies:
        by_kind.setdefault(reply.question.kind, []).append(reply)
    lines = []
    for kind, group in sorted(by_kind.items()):
        answered = [r for r in group if r.answered]
        scored = [r.f1 for r in answered if not r.question.refuse]
        f1 = statistics.fmean(scored) if scored else None
        lines.append(
            f"  kind={kind:<13} n={len(group):<3} answered={len(answered):<3} wrong={sum(r.wrong for r in group):<3}"
            f" contains={sum(r.contains and r.answered for r in group):<3}"
            + (f" f1={f1:.2f}" if f1 is not None else "")
        )
    return lines


def dump(replies: list[Reply], path: Path) -> None:
    rows = [
        {**asdict(r.question), "answered": r.answered, "f1": round(r.f1, 3), "contains": r.contains}
        | {"wrong": r.wrong, "first_token_s": r.first_token_s, "answer": r.answer}
        for r in replies
    ]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def report(replies: list[Reply]) -> None:
    print("per kind (answered: replies not handed off; wrong as defined above; f1 over answered in-KB replies):")
    print("\n".join(kind_lines(replies)))
    first_tokens = [r.first_token_s for r in replies if r.first_token_s is not None]
    mean_first = f"{statistics.fmean(first_tokens):.2f} s" if first_tokens else "n/a (nothing generated)"
    print(f"mean first_token_s={mean_first} over {len(first_tokens)} generated answers")
    chinese = [r for r in replies if r.question.language == CHINESE]
    if not chinese:
        print(metrics_line(replies))
        return
    in_chinese = sum(detect_language(r.answer) == CHINESE for r in chinese) / len(chinese)
    print(f"lang=zh replies_in_chinese={in_chinese:.2f} ({len(chinese)} Chinese questions)")
    others = [r for r in replies if r.question.language != CHINESE]
    if others:
        print(f"lang=en {metrics_line(others)}")
    print(f"lang=zh {metrics_line(chinese)}")


# ---- entry point ----------------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--kb", type=Path, help="folder of documents (needs --questions)")
    which.add_argument("--traps", action="store_true", help="both trap sets of bench/answer_traps, pooled")
    which.add_argument("--stackfaq", action="store_true", help="../shared/eval/stackfaq (all questions in-KB)")
    which.add_argument("--traps-zh", action="store_true", help="the Chinese trap set over knowledge/samples_zh")
    which.add_argument("--cmrc", action="store_true", help="../shared/eval/cmrc2018_trial (all questions in-KB)")
    parser.add_argument("--questions", type=Path, help="JSONL question file for --kb")
    parser.add_argument("--stackfaq-dir", type=Path, default=STACKFAQ, help="where --stackfaq reads kb/queries.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions of each set (0: all)")
    parser.add_argument("--backend", choices=["local", "fake"], default="local")
    parser.add_argument("--grounding", choices=["off", "on", "trim", "refuse", "quote"], default="off")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--dump", type=Path, help="write every reply in full, with its scores (JSONL)")
    args = parser.parse_args()
    if args.kb and not args.questions:
        parser.error("--kb needs --questions")
    return args


def question_sets(args: argparse.Namespace, scratch: Path) -> list[QuestionSet]:
    if args.stackfaq:
        folder = scratch / "stackfaq-documents"
        folder.mkdir()
        return [stackfaq_set(args.stackfaq_dir, args.limit, folder)]
    if args.cmrc:
        folder = scratch / "cmrc-documents"
        folder.mkdir()
        return [cmrc_set(CMRC, args.limit, folder)]
    named = (
        TRAP_SETS if args.traps else ZH_TRAP_SETS if args.traps_zh else [(args.questions.stem, args.kb, args.questions)]
    )
    sets = [QuestionSet(name, folder, load_questions(questions)) for name, folder, questions in named]
    return [QuestionSet(s.name, s.documents, s.questions[: args.limit or None]) for s in sets]


def main() -> None:
    args = parse_args()
    grounding_settings(args.grounding)  # stop before loading anything when the check cannot be switched
    with tempfile.TemporaryDirectory(prefix="ragdesk-answers-") as scratch:
        sets = question_sets(args, Path(scratch))
        started = time.perf_counter()
        services = open_services(args, Path(scratch) / "data")
        built_s = time.perf_counter() - started
        print(
            f"backend={args.backend} grounding={grounding_policy(services.settings)} services built in {built_s:.1f} s"
        )
        replies = [reply for question_set in sets for reply in run_set(services, question_set, args.verbose)]
    if args.dump:
        dump(replies, args.dump)
    report(replies)


if __name__ == "__main__":
    main()
