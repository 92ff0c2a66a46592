"""FAQ entries written for knowledge gaps: drafted (by the model or the admin), then approved by an admin, which
adds them to the knowledge base as a document of their own (listed and removable in the Knowledge tab).

An approval first claims the topic's questions (one row per question, keyed on the question's message), so two
admins approving the same topic at once cannot both add an entry: the second is told who was first, and keeps
their text as a draft. Nothing goes live until the claim and the document are both written."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from knowledge.database import Base, utcnow
from knowledge.errors import KnowledgeBaseNotFoundError, RagdeskError
from knowledge.service import ChunkDraft, DocumentDraft, KnowledgeService

MAX_ANSWER_CHARS = 4000
WORDINGS_KEPT = 8  # the topic's wordings written into the entry, so paraphrases find it
DRAFT, APPROVED, REMOVED = "draft", "approved", "removed"


class FaqError(RagdeskError):
    """An FAQ entry that cannot be saved or approved; the message says why and what was kept."""


class FaqEntryRow(Base):
    __tablename__ = "faq_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kb: Mapped[str] = mapped_column(String(100), index=True)
    topic: Mapped[str] = mapped_column(String(200), index=True)  # Topic.key when it was written
    questions: Mapped[list[str]] = mapped_column(JSON)  # the wordings, most central first
    message_ids: Mapped[list[int]] = mapped_column(JSON)  # the asked questions it answers
    answer: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=DRAFT)
    written_by: Mapped[str] = mapped_column(String(200))  # "model" for a drafted answer not yet edited
    document: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(String(200))


class FaqQuestionRow(Base):
    """An asked question an approved entry answers: it is no longer a knowledge gap."""

    __tablename__ = "faq_questions"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    faq_id: Mapped[int] = mapped_column(ForeignKey("faq_entries.id", ondelete="CASCADE"), index=True)


@dataclass(frozen=True)
class FaqEntry:
    id: int
    kb: str
    topic: str
    questions: list[str]
    answer: str
    status: str
    written_by: str
    document: str | None
    created_at: datetime
    approved_at: datetime | None
    approved_by: str | None


class FaqBook:
    """Drafts and approved entries; approving writes the entry into the knowledge base."""

    def __init__(self, sessions: sessionmaker[Session], knowledge: KnowledgeService) -> None:
        self._sessions = sessions
        self._knowledge = knowledge

    def save_draft(
        self, kb: str, topic: str, questions: list[str], message_ids: list[int], answer: str, by: str
    ) -> FaqEntry:
        """Keep an answer for a topic as a draft (nothing goes live)."""
        if not questions or not message_ids:
            raise FaqError("Pick a topic first: a draft answers its questions.")
        answer = _checked(answer)
        row = FaqEntryRow(
            kb=kb, topic=topic, questions=questions, message_ids=message_ids, answer=answer, written_by=by
        )
        with self._sessions.begin() as s:
            s.add(row)
        return _entry(row)

    def approve(self, entry_id: int, answer: str, by: str) -> FaqEntry:
        """Claim the draft's questions, then add it to its knowledge base as a document; on any failure the
        claim is undone and the draft (with `answer`) is kept."""
        entry = self.update_draft(entry_id, answer)
        try:
            self._knowledge.knowledge_base(entry.kb)
        except KnowledgeBaseNotFoundError:
            raise FaqError(
                f"The knowledge base '{entry.kb}' no longer exists, so nothing was added; "
                f"your answer is kept as draft #{entry.id}."
            ) from None
        self._claim(entry)
        try:
            document = self._knowledge.add_documents(entry.kb, [as_document(entry)])[0]
        except BaseException:
            self._unclaim(entry.id)
            raise
        with self._sessions.begin() as s:
            row = s.get_one(FaqEntryRow, entry.id)
            row.status, row.document, row.approved_at, row.approved_by = APPROVED, document.name, utcnow(), by
        return self.get(entry.id)

    def get(self, entry_id: int) -> FaqEntry:
        with self._sessions() as s:
            row = s.get(FaqEntryRow, entry_id)
            if row is None:
                raise FaqError(f"There is no FAQ entry #{entry_id}.")
            return _entry(row)

    def entries(self, kb: str | None = None) -> list[FaqEntry]:
        """Newest first; an approved entry whose document was removed is marked removed (its questions are
        gaps again)."""
        self._release_removed()
        stmt = select(FaqEntryRow).order_by(FaqEntryRow.id.desc())
        if kb:
            stmt = stmt.where(FaqEntryRow.kb == kb)
        with self._sessions() as s:
            return [_entry(r) for r in s.scalars(stmt)]

    def update_draft(self, entry_id: int, answer: str) -> FaqEntry:
        """A draft's new answer (an approved entry is not edited here: remove its document and answer again)."""
        answer = _checked(answer)
        with self._sessions.begin() as s:
            row = s.get(FaqEntryRow, entry_id)
            if row is None:
                raise FaqError(f"There is no FAQ entry #{entry_id}.")
            if row.status == APPROVED:
                raise FaqError(f"FAQ entry #{entry_id} was already approved by {row.approved_by}; nothing was added.")
            if row.answer != answer:
                row.answer, row.written_by = answer, "admin" if row.written_by == "model" else row.written_by
            return _entry(row)

    def _claim(self, entry: FaqEntry) -> None:
        with self._sessions() as s:
            ids = s.scalars(select(FaqEntryRow.message_ids).where(FaqEntryRow.id == entry.id)).one()
        try:
            with self._sessions.begin() as s:
                s.add_all(FaqQuestionRow(message_id=m, faq_id=entry.id) for m in ids)
        except IntegrityError:
            with self._sessions() as s:
                raise FaqError(self._taken(s, ids, entry.id)) from None

    def _taken(self, s: Session, ids: list[int], entry_id: int) -> str:
        first = s.execute(
            select(FaqEntryRow)
            .join(FaqQuestionRow, FaqQuestionRow.faq_id == FaqEntryRow.id)
            .where(FaqQuestionRow.message_id.in_(ids))
            .limit(1)
        ).scalar_one_or_none()
        who = f"#{first.id} by {first.approved_by or 'another admin'}" if first else "another entry"
        return (
            f"Another admin just answered this topic (FAQ entry {who}), so nothing was added; "
            f"your answer is kept as draft #{entry_id}."
        )

    def _unclaim(self, entry_id: int) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(FaqQuestionRow).where(FaqQuestionRow.faq_id == entry_id))

    def _release_removed(self) -> None:
        with self._sessions() as s:
            approved = s.execute(
                select(FaqEntryRow.id, FaqEntryRow.kb, FaqEntryRow.document).where(FaqEntryRow.status == APPROVED)
            ).all()
        gone = [i for i, kb, name in approved if not name or self._knowledge.registry.find_by_name(kb, name) is None]
        if gone:
            with self._sessions.begin() as s:
                s.execute(delete(FaqQuestionRow).where(FaqQuestionRow.faq_id.in_(gone)))
                for row in s.scalars(select(FaqEntryRow).where(FaqEntryRow.id.in_(gone))):
                    row.status = REMOVED


def as_document(entry: FaqEntry) -> DocumentDraft:
    """One chunk: the wordings as questions (a quote never picks a question), then the answer."""
    wordings = [_as_question(q) for q in entry.questions[:WORDINGS_KEPT]]
    title = f"FAQ: {wordings[0]}"
    body = "\n".join([*wordings[1:], entry.answer])
    text = f"{title}\n{body}"
    name = f"FAQ {entry.id} - {_safe_name(entry.questions[0])}.md"
    digest = hashlib.sha256(text.encode()).hexdigest()
    metadata: dict[str, str | int | float | bool] = {"title": "FAQ", "position": title, "snippet": body[:400]}
    return DocumentDraft(name, digest, len(text.encode()), [ChunkDraft(text, metadata)])


def _as_question(text: str) -> str:
    text = " ".join(text.split()).rstrip(".。!！ ")
    return text if re.search(r"[?？]$", text) else f"{text}?"


def _safe_name(question: str) -> str:
    return re.sub(r"[\\/\x00-\x1f]+", " ", " ".join(question.split()))[:60].strip() or "question"


def _checked(answer: str) -> str:
    answer = answer.strip()
    if not answer:
        raise FaqError("The answer is empty; write what customers should be told.")
    if len(answer) > MAX_ANSWER_CHARS:
        raise FaqError(f"The answer is {len(answer):,} characters; an FAQ answer holds at most {MAX_ANSWER_CHARS:,}.")
    return answer


def _entry(row: FaqEntryRow) -> FaqEntry:
    return FaqEntry(
        row.id,
        row.kb,
        row.topic,
        list(row.questions),
        row.answer,
        row.status,
        row.written_by,
        row.document,
        row.created_at,
        row.approved_at,
        row.approved_by,
    )
