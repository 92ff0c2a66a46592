"""The answer log: one narrow row per answered turn (what was asked, how it ended, how fast, how it was rated),
and one per conversation (its first day, whether it was ever handed off or thumbed down), written in the
transaction that stores the turn or the thumbs. The Insights tab counts over these in SQL, from covering indexes
(the index alone answers its queries), instead of reading every message's JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from langchain_core.messages import BaseMessage
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    case,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from knowledge.database import Base
from knowledge.registry import kb_reference

BUCKET_BASE = 1.1  # time-to-first-token buckets are 10% wide: a percentile read from them is within 5%
BACKFILL_BATCH = 2000
# What the daily figures count, after the day: covering-index columns, so the index alone answers (1M turns: a
# year's report reads about 1M index entries and no table row).
_COUNTED = ("first_token_bucket", "handed_off", "refused_by_check", "trimmed", "rating")


class AnswerLogRow(Base):
    __tablename__ = "answer_log"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kb: Mapped[str] = mapped_column(String(100), kb_reference())  # follows a rename
    day: Mapped[date] = mapped_column(Date)  # the UTC day, the unit every plot counts in
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    question: Mapped[str] = mapped_column(Text)
    handed_off: Mapped[bool] = mapped_column(Boolean)
    refused_by_check: Mapped[bool] = mapped_column(Boolean)  # handed off: no sentence the check could support
    trimmed: Mapped[bool] = mapped_column(Boolean)  # answered, with some of the model's sentences not shown
    first_token_bucket: Mapped[int | None] = mapped_column(Integer)  # see ttft_bucket; None: nothing generated
    rating: Mapped[str | None] = mapped_column(String(4))  # the latest thumbs: up, down or none
    language: Mapped[str] = mapped_column(String(8), default="en")

    __table_args__ = (
        Index("ix_answer_log_kb_day", "kb", "day", *_COUNTED),
        Index("ix_answer_log_day", "day", *_COUNTED),
        Index("ix_answer_log_conversation", "conversation_id"),
    )


class ConversationOutcomeRow(Base):
    """A conversation as deflection counts it: deflected unless it was handed off or thumbed down."""

    __tablename__ = "conversation_outcomes"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference())
    first_day: Mapped[date] = mapped_column(Date)  # the UTC day of its first answer
    handed_off: Mapped[bool] = mapped_column(Boolean, default=False)
    disliked: Mapped[bool] = mapped_column(Boolean, default=False)  # an answer's latest thumbs is down

    __table_args__ = (
        Index("ix_conversation_outcomes_kb_day", "kb", "first_day", "handed_off", "disliked"),
        Index("ix_conversation_outcomes_day", "first_day", "handed_off", "disliked"),
    )


def ttft_bucket(seconds: float | None) -> int | None:
    """The bucket of a time to first token: round(log_1.1(milliseconds)); 0 for anything under 1 ms."""
    if seconds is None:
        return None
    return max(0, round(math.log(max(seconds * 1000, 1.0), BUCKET_BASE)))


def bucket_seconds(bucket: int) -> float:
    return BUCKET_BASE**bucket / 1000


def log_rows(
    messages: Sequence[tuple[int, BaseMessage]], conversation_id: str, kb: str, at: datetime
) -> list[AnswerLogRow]:
    """A row for each answer in `messages` ((stored id, message) in order), with the question before it."""
    rows, question = [], ""
    for message_id, message in messages:
        if message.type == "human":
            question = str(message.content)
        elif message.type == "ai":
            rows.append(log_row(message_id, conversation_id, kb, at, question, dict(message.additional_kwargs)))
    return rows


def log_row(
    message_id: int, conversation_id: str, kb: str, at: datetime, question: str, extra: dict[str, Any]
) -> AnswerLogRow:
    handed_off = extra.get("answered") is False
    sentences = (extra.get("grounding") or {}).get("sentences") or []
    return AnswerLogRow(
        message_id=message_id,
        conversation_id=conversation_id,
        kb=kb,
        day=at.date(),
        created_at=at,
        question=question[:4000],
        handed_off=handed_off,
        refused_by_check=handed_off and bool(sentences),
        trimmed=not handed_off and any(s.get("reason") and not s.get("quoted") for s in sentences),
        first_token_bucket=ttft_bucket(extra.get("first_token_s")),
        language=str(extra.get("language") or "en")[:8],
    )


def record(session: Session, rows: list[AnswerLogRow]) -> None:
    """Add one conversation's new answer rows and fold them into its outcome (in the caller's transaction)."""
    if not rows:
        return
    session.add_all(rows)
    first = rows[0]
    if session.get(ConversationOutcomeRow, first.conversation_id) is None:
        session.add(ConversationOutcomeRow(conversation_id=first.conversation_id, kb=first.kb, first_day=first.day))
        session.flush()
    if any(r.handed_off for r in rows):  # set, never read-and-written: two replicas cannot undo each other
        session.execute(
            update(ConversationOutcomeRow)
            .where(ConversationOutcomeRow.conversation_id == first.conversation_id)
            .values(handed_off=True)
        )


def rate(session: Session, message_id: int, rating: str) -> None:
    """Keep the answer's latest thumbs beside it, and whether its conversation has a thumbs down."""
    session.execute(update(AnswerLogRow).where(AnswerLogRow.message_id == message_id).values(rating=rating))
    conversation = select(AnswerLogRow.conversation_id).where(AnswerLogRow.message_id == message_id)
    down = exists().where(
        AnswerLogRow.conversation_id == ConversationOutcomeRow.conversation_id, AnswerLogRow.rating == "down"
    )
    session.execute(
        update(ConversationOutcomeRow)
        .where(ConversationOutcomeRow.conversation_id.in_(conversation.scalar_subquery()))
        .values(disliked=down)
    )


def backfill_answer_log(sessions: sessionmaker[Session]) -> int:
    """Log the answers stored before the answer log existed (an upgrade), in batches; returns how many."""
    from chatbot.conversation.history import ConversationRow, FeedbackRow, MessageRow  # the tables it reads

    done = 0
    while True:
        with sessions.begin() as s:
            question = aliased(MessageRow)
            newest = select(FeedbackRow.rating).where(FeedbackRow.message_id == MessageRow.id)
            batch = s.execute(
                select(
                    MessageRow,
                    ConversationRow.kb,
                    question.content,
                    newest.order_by(FeedbackRow.id.desc()).limit(1).scalar_subquery(),
                )
                .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
                .outerjoin(AnswerLogRow, AnswerLogRow.message_id == MessageRow.id)
                .outerjoin(question, question.id == MessageRow.id - 1)
                .where(MessageRow.role == "ai", AnswerLogRow.message_id.is_(None))
                .limit(BACKFILL_BATCH)
            ).all()
            for message, kb, asked, rating in batch:
                row = log_row(message.id, message.conversation_id, kb, message.created_at, asked or "", message.extra)
                row.rating = rating
                s.add(row)
        done += len(batch)
        if len(batch) < BACKFILL_BATCH:
            backfill_outcomes(sessions)
            return done


def backfill_outcomes(sessions: sessionmaker[Session]) -> None:
    """Outcomes of the conversations logged without one (an upgrade)."""
    log, outcome = AnswerLogRow, ConversationOutcomeRow
    handed_off = func.max(case((log.handed_off.is_(True), 1), else_=0))
    disliked = func.max(case((log.rating == "down", 1), else_=0))
    with sessions.begin() as s:
        missing = s.execute(
            select(log.conversation_id, func.min(log.kb), func.min(log.day), handed_off, disliked)
            .outerjoin(outcome, outcome.conversation_id == log.conversation_id)
            .where(outcome.conversation_id.is_(None))
            .group_by(log.conversation_id)
        ).all()
        s.add_all(
            ConversationOutcomeRow(conversation_id=c, kb=kb, first_day=_day(day), handed_off=bool(h), disliked=bool(d))
            for c, kb, day, h, d in missing
        )


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
