"""Test sets: per knowledge base, questions with the answer expected (or "should refuse"), gathered from approved
FAQ entries, from turns an admin promotes in the Conversations tab, or imported from a CSV file. The evaluation
gate answers them with a template version before it goes live."""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Boolean, CursorResult, DateTime, Integer, String, Text, UniqueConstraint, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from knowledge.database import Base, utcnow
from knowledge.errors import RagdeskError
from knowledge.registry import kb_reference

ORIGINS = ("faq", "good answer", "should refuse", "csv")
QUESTION_HEADERS = ("question",)
EXPECTED_HEADERS = ("expected_answer", "expected", "answer")
REFUSE_HEADERS = ("should_refuse", "refuse")
YES = frozenset({"1", "yes", "y", "true", "x", "refuse"})
MAX_QUESTION_CHARS = 4000
PROBLEMS_SHOWN = 10


class EvaluationSetError(RagdeskError):
    """A test case or a CSV file that cannot be used; nothing of it was kept."""


class EvalCaseRow(Base):
    __tablename__ = "eval_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference(), index=True)
    question_key: Mapped[str] = mapped_column(String(40))  # the question with case and spaces folded, hashed
    question: Mapped[str] = mapped_column(Text)
    expected: Mapped[str] = mapped_column(Text, default="")
    should_refuse: Mapped[bool] = mapped_column(Boolean, default=False)
    origin: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("kb", "question_key", name="uq_eval_cases_kb_question"),)


@dataclass(frozen=True)
class EvalCase:
    id: int
    kb: str
    question: str
    expected: str
    should_refuse: bool
    origin: str


@dataclass(frozen=True)
class CaseDraft:
    question: str
    expected: str = ""
    should_refuse: bool = False


class EvaluationSets:
    def __init__(self, sessions: sessionmaker[Session], max_cases: int) -> None:
        self._sessions = sessions
        self.max_cases = max_cases

    def cases(self, kb: str) -> list[EvalCase]:
        with self._sessions() as s:
            rows = s.scalars(select(EvalCaseRow).where(EvalCaseRow.kb == kb).order_by(EvalCaseRow.id))
            return [EvalCase(r.id, r.kb, r.question, r.expected, r.should_refuse, r.origin) for r in rows]

    def count(self, kb: str) -> int:
        with self._sessions() as s:
            return s.scalar(select(func.count()).select_from(EvalCaseRow).where(EvalCaseRow.kb == kb)) or 0

    def add(self, kb: str, case: CaseDraft, origin: str) -> None:
        """Add a case, or replace the expectation of the same question (case and spacing aside)."""
        problem = _problem(case)
        if problem:
            raise EvaluationSetError(problem)
        self._write(kb, [case], origin)

    def import_csv(self, kb: str, data: bytes) -> int:
        """All the file's rows, or none: a specific message names every problem (the first ten)."""
        cases = parse_csv(data, self.max_cases)
        self._write(kb, cases, "csv")
        return len(cases)

    def remove(self, kb: str, case_id: int) -> bool:
        """False when the knowledge base's set has no such case."""
        with self._sessions.begin() as s:
            gone = s.execute(delete(EvalCaseRow).where(EvalCaseRow.kb == kb, EvalCaseRow.id == case_id))
            return bool(cast("CursorResult[Any]", gone).rowcount)

    def _write(self, kb: str, cases: list[CaseDraft], origin: str) -> None:
        by_key = {question_key(c.question): c for c in cases}
        with self._sessions.begin() as s:
            existing = {
                r.question_key: r for r in s.scalars(select(EvalCaseRow).where(EvalCaseRow.kb == kb).with_for_update())
            }
            added = len(set(by_key) - set(existing))
            if len(existing) + added > self.max_cases:
                raise EvaluationSetError(
                    f"The test set of '{kb}' would hold {len(existing) + added:,} questions; it holds at most "
                    f"{self.max_cases:,} (each is answered twice when a template is activated). Nothing was added."
                )
            for key, case in by_key.items():
                row = existing.get(key) or EvalCaseRow(kb=kb, question_key=key)
                row.question, row.expected, row.should_refuse, row.origin = (
                    case.question.strip(),
                    case.expected.strip(),
                    case.should_refuse,
                    origin,
                )
                s.add(row)


def question_key(question: str) -> str:
    return hashlib.sha1(" ".join(question.lower().split()).encode()).hexdigest()


def parse_csv(data: bytes, max_rows: int) -> list[CaseDraft]:
    """Rows of (question, expected_answer[, should_refuse]) from a UTF-8 CSV with a header line."""
    if not data.strip():
        raise EvaluationSetError("The file is empty; it needs a header line (question,expected_answer) and rows.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise EvaluationSetError(
            f"The file is not UTF-8 text (byte 0x{data[e.start]:02x} at position {e.start:,}). Save it as "
            "'CSV UTF-8' (in Excel: Save As, CSV UTF-8) and import it again. Nothing was imported."
        ) from None
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower().replace(" ", "_") for h in next(rows)]
        columns = _columns(header)
        cases: list[CaseDraft] = []
        problems: list[str] = []
        for line, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(cases) + len(problems) >= max_rows:
                raise EvaluationSetError(_too_many(text, max_rows))
            case = _case(row, columns)
            problem = _problem(case)
            (problems.append(f"Line {line}: {problem}") if problem else cases.append(case))
    except csv.Error as e:
        raise EvaluationSetError(f"The file is not a readable CSV ({e}). Nothing was imported.") from None
    if problems:
        shown = "\n".join(problems[:PROBLEMS_SHOWN])
        more = f"\n… and {len(problems) - PROBLEMS_SHOWN:,} more." if len(problems) > PROBLEMS_SHOWN else ""
        raise EvaluationSetError(f"Nothing was imported; fix these lines:\n{shown}{more}")
    if not cases:
        raise EvaluationSetError("The file has a header but no questions. Nothing was imported.")
    return cases


def _columns(header: list[str]) -> dict[str, int | None]:
    def find(names: tuple[str, ...]) -> int | None:
        return next((header.index(n) for n in names if n in header), None)

    columns = {"question": find(QUESTION_HEADERS), "expected": find(EXPECTED_HEADERS), "refuse": find(REFUSE_HEADERS)}
    if columns["question"] is None or (columns["expected"] is None and columns["refuse"] is None):
        found = ", ".join(h or "(blank)" for h in header) or "none"
        raise EvaluationSetError(
            "The CSV needs a header line with the columns question and expected_answer (and, optionally, "
            f"should_refuse: yes for questions the documents do not answer). Its columns are: {found}. "
            "Nothing was imported."
        )
    return columns


def _case(row: list[str], columns: dict[str, int | None]) -> CaseDraft:
    def cell(name: str) -> str:
        index = columns[name]
        return row[index].strip() if index is not None and index < len(row) else ""

    return CaseDraft(cell("question"), cell("expected"), cell("refuse").lower() in YES)


def _problem(case: CaseDraft) -> str | None:
    if not case.question.strip():
        return "the question is empty."
    if len(case.question) > MAX_QUESTION_CHARS:
        return f"the question is {len(case.question):,} characters (at most {MAX_QUESTION_CHARS:,})."
    if not case.should_refuse and not case.expected.strip():
        return "there is no expected answer (or should_refuse = yes)."
    return None


def _too_many(text: str, max_rows: int) -> str:
    lines = sum(1 for line in text.splitlines()[1:] if line.strip())
    return (
        f"The file has about {lines:,} rows; a test set holds at most {max_rows:,} questions (each is answered "
        "twice when a template is activated). Import a sample of it. Nothing was imported."
    )
