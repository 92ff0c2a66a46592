"""Conversation history in SQL: the tables, the buffer memory (a BaseChatMessageHistory), the conversation list and
the admins' search over every conversation."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    ForeignKey,
    Integer,
    Select,
    String,
    Text,
    and_,
    case,
    delete,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from chatbot.conversation.answer_log import AnswerLogRow, ConversationOutcomeRow, log_rows, rate, record
from chatbot.conversation.conversation_search import ConversationPage, ConversationQuery, ConversationSummary
from chatbot.conversation.turns import Turn, turns_from_messages
from chatbot.errors import ConversationNotFoundError, InvalidFeedbackError
from knowledge.database import Base, utcnow
from knowledge.registry import kb_reference

TITLE_CHARS = 60


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200), index=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference(), index=True)
    title: Mapped[str] = mapped_column(String(200), default="New conversation")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class MessageRow(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedbackRow(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    rating: Mapped[str] = mapped_column(String(4))  # up | down
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


_MESSAGE_TYPES: dict[str, type[BaseMessage]] = {"human": HumanMessage, "ai": AIMessage, "system": SystemMessage}


@dataclass(frozen=True)
class Conversation:
    id: str
    owner: str
    kb: str
    title: str
    updated_at: datetime


class SQLChatHistory(BaseChatMessageHistory):
    """The messages of one conversation; `additional_kwargs` (sources, timings) are kept with each message."""

    def __init__(self, sessions: sessionmaker[Session], conversation_id: str) -> None:
        self._sessions = sessions
        self.conversation_id = conversation_id

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        with self._sessions() as s:
            stmt = select(MessageRow).where(MessageRow.conversation_id == self.conversation_id).order_by(MessageRow.id)
            return [_MESSAGE_TYPES[r.role](content=r.content, additional_kwargs=dict(r.extra)) for r in s.scalars(stmt)]

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages in one transaction, so a turn is stored whole or not at all."""
        with self._sessions.begin() as s:
            conversation = s.get(ConversationRow, self.conversation_id)
            if conversation is None:
                raise ConversationNotFoundError("This conversation no longer exists.")
            rows = [
                MessageRow(
                    conversation_id=self.conversation_id,
                    role=m.type,
                    content=str(m.content),
                    extra=dict(m.additional_kwargs),
                )
                for m in messages
            ]
            s.add_all(rows)
            s.flush()  # the rows' ids, which the answer log keys on
            now = utcnow()
            stored = [(r.id, m) for r, m in zip(rows, messages, strict=True)]
            record(s, log_rows(stored, self.conversation_id, conversation.kb, now))
            conversation.updated_at = now
            first_question = next((m for m in messages if m.type == "human"), None)
            if conversation.title == "New conversation" and first_question is not None:
                conversation.title = " ".join(str(first_question.content).split())[:TITLE_CHARS]

    def clear(self) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(MessageRow).where(MessageRow.conversation_id == self.conversation_id))


class PassingHistory(BaseChatMessageHistory):
    """A history nobody stores: the caller's own messages (the OpenAI-compatible API), or none (a template trial).
    The turn is added to it like to any history, and goes when it goes."""

    def __init__(self, messages: Sequence[BaseMessage] = ()) -> None:
        self._messages = list(messages)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        return list(self._messages)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        self._messages.extend(messages)

    def clear(self) -> None:
        self._messages.clear()


class ConversationStore:
    """Conversations per owner (a browser, later a signed-in user): create, list, open, delete."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, owner: str, kb: str) -> Conversation:
        row = ConversationRow(id=str(uuid.uuid4()), owner=owner, kb=kb, created_at=utcnow(), updated_at=utcnow())
        with self._sessions.begin() as s:
            s.add(row)
        return _conversation(row)

    def list(self, owner: str) -> list[Conversation]:
        with self._sessions() as s:
            stmt = (
                select(ConversationRow)
                .where(ConversationRow.owner == owner)
                .order_by(ConversationRow.updated_at.desc())
            )
            return [_conversation(r) for r in s.scalars(stmt)]

    def search(self, query: ConversationQuery) -> ConversationPage:
        """A page of every owner's conversations (admins only), latest activity first, each with its turns and
        thumbs counted in SQL; a page past the last one gives the last."""
        filters = _search_filters(query)
        with self._sessions() as s:
            total = s.scalar(select(func.count()).select_from(ConversationRow).where(*filters)) or 0
            page = max(0, min(query.page, -(-total // query.page_size) - 1))
            rows = s.execute(_summaries(filters, page * query.page_size, query.page_size)).all()
        return ConversationPage([ConversationSummary(*r) for r in rows], total, page, query.page_size)

    def knowledge_bases(self) -> builtins.list[str]:
        """The knowledge bases that have conversations."""
        with self._sessions() as s:
            return list(s.scalars(select(ConversationRow.kb).distinct().order_by(ConversationRow.kb)))

    def owner_of(self, conversation_id: str) -> str:
        with self._sessions() as s:
            row = s.get(ConversationRow, conversation_id)
            if row is None:
                raise ConversationNotFoundError("This conversation does not exist.")
            return row.owner

    def get(self, owner: str, conversation_id: str) -> Conversation:
        with self._sessions() as s:
            row = s.get(ConversationRow, conversation_id)
            if row is None or row.owner != owner:
                raise ConversationNotFoundError("This conversation does not exist.")
            return _conversation(row)

    def history(self, owner: str, conversation_id: str) -> SQLChatHistory:
        self.get(owner, conversation_id)
        return SQLChatHistory(self._sessions, conversation_id)

    def transcript(self, owner: str, conversation_id: str) -> builtins.list[Turn]:
        """The conversation's turns, with what was kept beside each answer."""
        return turns_from_messages(self.history(owner, conversation_id).messages)

    def title_untitled(self, owner: str, conversation_id: str, question: str) -> None:
        """A conversation still called "New conversation" takes its first question as its title."""
        self.get(owner, conversation_id)
        with self._sessions.begin() as s:
            conversation = s.get(ConversationRow, conversation_id)
            if conversation is not None and conversation.title == "New conversation":
                conversation.title = " ".join(question.split())[:TITLE_CHARS]

    def add_feedback(self, owner: str, conversation_id: str, turn: int, rating: str, reason: str = "") -> None:
        """Thumbs up or down on the answer of turn `turn` (1 = first) of the owner's conversation."""
        if rating not in ("up", "down"):
            raise InvalidFeedbackError("Feedback is 'up' or 'down'.")
        self.get(owner, conversation_id)
        with self._sessions.begin() as s:
            answers = s.scalars(
                select(MessageRow.id)
                .where(MessageRow.conversation_id == conversation_id, MessageRow.role == "ai")
                .order_by(MessageRow.id)
            ).all()
            if not 1 <= turn <= len(answers):
                raise InvalidFeedbackError(f"This conversation has no turn {turn}.")
            s.add(FeedbackRow(message_id=answers[turn - 1], rating=rating, reason=reason.strip()[:2000]))
            rate(s, answers[turn - 1], rating)

    def feedback(self, conversation_id: str) -> dict[int, tuple[str, str]]:
        """{turn: (rating, reason)}, the latest feedback per answered turn."""
        with self._sessions() as s:
            answers = s.scalars(
                select(MessageRow.id)
                .where(MessageRow.conversation_id == conversation_id, MessageRow.role == "ai")
                .order_by(MessageRow.id)
            ).all()
            turn_of = {message_id: n for n, message_id in enumerate(answers, start=1)}
            rows = s.scalars(select(FeedbackRow).where(FeedbackRow.message_id.in_(answers)).order_by(FeedbackRow.id))
            return {turn_of[r.message_id]: (r.rating, r.reason) for r in rows}

    def delete(self, owner: str, conversation_id: str) -> None:
        self.get(owner, conversation_id)
        with self._sessions.begin() as s:
            s.execute(delete(AnswerLogRow).where(AnswerLogRow.conversation_id == conversation_id))
            s.execute(delete(ConversationOutcomeRow).where(ConversationOutcomeRow.conversation_id == conversation_id))
            s.execute(delete(MessageRow).where(MessageRow.conversation_id == conversation_id))
            s.execute(delete(ConversationRow).where(ConversationRow.id == conversation_id))


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(row.id, row.owner, row.kb, row.title, row.updated_at)


def _search_filters(query: ConversationQuery) -> builtins.list[ColumnElement[bool]]:
    filters: builtins.list[ColumnElement[bool]] = []
    if text := query.text.strip():
        asked = select(MessageRow.conversation_id).where(
            MessageRow.role == "human", MessageRow.content.icontains(text, autoescape=True)
        )
        found_in = (ConversationRow.title, ConversationRow.owner)
        filters.append(or_(*(c.icontains(text, autoescape=True) for c in found_in), ConversationRow.id.in_(asked)))
    if query.unanswered_only:
        handed_off = select(MessageRow.conversation_id).where(MessageRow.role == "ai", _handed_off())
        filters.append(ConversationRow.id.in_(handed_off))
    if query.thumbs_down_only:
        newest = select(func.max(FeedbackRow.id)).group_by(FeedbackRow.message_id)
        rated_down = (
            select(MessageRow.conversation_id)
            .join(FeedbackRow, FeedbackRow.message_id == MessageRow.id)
            .where(FeedbackRow.id.in_(newest), FeedbackRow.rating == "down")
        )
        filters.append(ConversationRow.id.in_(rated_down))
    if query.kb:
        filters.append(ConversationRow.kb == query.kb)
    if query.date_from:
        filters.append(ConversationRow.updated_at >= _midnight(query.date_from))
    if query.date_to:
        filters.append(ConversationRow.updated_at < _midnight(query.date_to + timedelta(days=1)))
    return filters


def _summaries(filters: builtins.list[ColumnElement[bool]], offset: int, limit: int) -> Select[Any]:
    """The page's conversations (filtered, ordered and cut first), then their answers and each answer's latest
    rating joined and counted per conversation."""
    page = (
        select(ConversationRow)
        .where(*filters)
        .order_by(ConversationRow.updated_at.desc(), ConversationRow.id)
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    rating = aliased(FeedbackRow)
    newest = select(func.max(FeedbackRow.id)).where(FeedbackRow.message_id == MessageRow.id).scalar_subquery()
    turns, handed_off = func.count(MessageRow.id), func.count(case((_handed_off(), MessageRow.id)))
    columns = (page.c.id, page.c.owner, page.c.kb, page.c.title, page.c.updated_at)
    return (
        select(*columns, turns, turns - handed_off, handed_off)
        .add_columns(*(func.count(case((rating.rating == r, rating.id))) for r in ("up", "down")))
        .outerjoin(MessageRow, and_(MessageRow.conversation_id == page.c.id, MessageRow.role == "ai"))
        .outerjoin(rating, and_(rating.message_id == MessageRow.id, rating.id == newest.correlate(MessageRow)))
        .group_by(*columns)
        .order_by(page.c.updated_at.desc(), page.c.id)
    )


def _handed_off() -> ColumnElement[bool]:
    """An answer that was the handoff reply (older answers without the mark count as answered)."""
    return MessageRow.extra["answered"].as_boolean() == false()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
