"""Support metrics counted in SQL over the answer log: turns stored the way the chat stores them (a real SQLite
file), rated, and read back per day, per knowledge base and period; the answer log filled for an upgrade's old
turns; the same figures on /metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from prometheus_client import generate_latest
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import sessionmaker

from chatbot.conversation.answer_log import (
    AnswerLogRow,
    ConversationOutcomeRow,
    backfill_answer_log,
    bucket_seconds,
    ttft_bucket,
)
from chatbot.conversation.history import ConversationStore
from chatbot.insights.support_metrics import MetricsQuery, SupportMetrics
from chatbot.migrations.schema import upgrade_database
from chatbot.ui.metrics_panel import MetricsQueryError, metrics_query, plot_frames, summary
from knowledge.database import open_database
from knowledge.registry import KnowledgeBaseRow

pytestmark = pytest.mark.both_databases  # SQLite and PostgreSQL


@pytest.fixture
def store(database_url: str) -> Iterator[Any]:
    engine = open_database(database_url)
    upgrade_database(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as s:
        s.add_all(KnowledgeBaseRow(name=name, collection=f"c-{name}") for name in ("default", "other"))
    yield ConversationStore(sessions), SupportMetrics(sessions), sessions
    engine.dispose()


def turn(store: ConversationStore, conversation: str, question: str, **extra: Any) -> None:
    answer = AIMessage(content="reply", additional_kwargs={"answered": True, "language": "en", **extra})
    store.history("owner", conversation).add_messages([HumanMessage(content=question), answer])


def handoff(store: ConversationStore, conversation: str, question: str, checked: bool = False) -> None:
    sentences = [{"text": "Yes.", "reason": "not in the documents"}] if checked else []
    grounding = {"policy": "trim", "sentences": sentences}
    turn(store, conversation, question, answered=False, refusal="x", grounding=grounding)


def back_date(sessions: Any, conversation: str, days: int) -> None:
    """Move a conversation's answers `days` into the past (turns are stamped with the time they are stored)."""
    day = datetime.now(UTC).date() - timedelta(days=days)
    with sessions.begin() as s:
        s.execute(update(AnswerLogRow).where(AnswerLogRow.conversation_id == conversation).values(day=day))
        outcome = ConversationOutcomeRow.conversation_id == conversation
        s.execute(update(ConversationOutcomeRow).where(outcome).values(first_day=day))


def test_each_figure_is_counted_per_day_and_over_the_period(store: Any) -> None:
    conversations, metrics, sessions = store
    first = conversations.create("owner", "default").id  # answered twice, thumbs up: deflected
    turn(conversations, first, "How long do returns take?", first_token_s=0.5)
    turn(conversations, first, "And refunds?", first_token_s=1.0)
    conversations.add_feedback("owner", first, 2, "up")
    second = conversations.create("owner", "default").id  # a trimmed answer thumbed down, then a handoff
    trimmed = [{"text": "A.", "reason": None}, {"text": "B.", "reason": "unsupported"}]
    turn(conversations, second, "Is it free?", first_token_s=2.0, grounding={"policy": "trim", "sentences": trimmed})
    conversations.add_feedback("owner", second, 1, "up")
    conversations.add_feedback("owner", second, 1, "down")  # the latest thumbs counts
    handoff(conversations, second, "Do you ship to Mars?", checked=True)
    third = conversations.create("owner", "default").id  # yesterday, a handoff: not deflected
    handoff(conversations, third, "Can I pay in bitcoin?")
    back_date(sessions, third, 1)
    elsewhere = conversations.create("owner", "other").id
    turn(conversations, elsewhere, "Hello?", first_token_s=0.1)

    today = datetime.now(UTC).date()
    report = metrics.report(MetricsQuery(kb="default", date_from=today - timedelta(days=6), date_to=today))
    assert len(report.days) == 7
    assert report.days[-1].day == today
    t = report.total
    assert (t.questions, t.answered, t.handed_off, t.refused_by_check, t.trimmed) == (5, 3, 2, 1, 1)
    assert (t.thumbs_up, t.thumbs_down, t.conversations, t.deflected) == (1, 1, 3, 1)
    assert t.ttft_p50_s == pytest.approx(1.0, rel=0.06)
    assert t.ttft_p95_s == pytest.approx(2.0, rel=0.06)
    yesterday, now = report.days[-2], report.days[-1]
    assert (yesterday.questions, yesterday.handed_off, yesterday.conversations, yesterday.deflected) == (1, 1, 1, 0)
    assert (now.questions, now.conversations, now.deflected) == (4, 2, 1)
    assert report.days[0].questions == 0
    assert report.days[0].ttft_p50_s is None

    everywhere = metrics.report(MetricsQuery(date_from=today, date_to=today)).total
    assert (everywhere.questions, everywhere.conversations) == (5, 3)  # "other" too, yesterday's not
    assert metrics.report(MetricsQuery(kb="nowhere")).empty


def test_the_csv_and_the_plots_carry_the_same_numbers(store: Any) -> None:
    conversations, metrics, _ = store
    conversation = conversations.create("owner", "default").id
    turn(conversations, conversation, "Q1", first_token_s=0.3)
    handoff(conversations, conversation, "Q2")
    today = datetime.now(UTC).date()
    report = metrics.report(MetricsQuery(date_from=today - timedelta(days=2), date_to=today))

    lines = report.csv().splitlines()
    assert lines[0].startswith("day,questions,answered,handed_off,refused_by_check,trimmed,thumbs_up,thumbs_down")
    assert lines[-2].startswith(f"{today.isoformat()},2,1,1,0,0,0,0,1,0,")
    assert lines[-1].startswith("total,2,1,1,")
    assert lines[-1].endswith(",0.5000,0.5000,0.0000")
    assert len(lines) == 1 + 3 + 1
    volume, shares, _, speed = plot_frames(report)
    asked = volume[volume.series == "asked"]
    assert list(asked["count"]) == [0, 0, 2]
    assert len(shares[shares.series == "answered"]) == 1  # days without questions have no share
    assert list(speed.series) == ["p50", "p95"]
    assert "2 questions in 1 conversations" in summary(report)


def test_an_empty_history_says_there_is_nothing_yet(store: Any) -> None:
    _, metrics, _ = store
    report = metrics.report(metrics_query(None, "2026-01-01", "2026-01-31"))
    assert report.empty
    assert len(report.days) == 31
    assert "Nothing yet" in summary(report)
    assert metrics.report(MetricsQuery()).days == []


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("2026-13-01", "", "**From** is not a date"),
        ("2026-02-01", "2026-01-01", "starts (2026-02-01) after it ends (2026-01-01)"),
        ("1990-01-01", "2026-01-01", "at most ten years"),
    ],
)
def test_a_bad_period_is_explained(since: str, until: str, message: str) -> None:
    with pytest.raises(MetricsQueryError, match=re.escape(message)):
        metrics_query(None, since, until)


def test_the_default_period_is_the_last_30_days() -> None:
    query = metrics_query("All knowledge bases", "", "", today=date(2026, 3, 31))
    assert (query.kb, query.date_from, query.date_to) == (None, date(2026, 3, 2), date(2026, 3, 31))


def test_an_upgrade_logs_the_answers_stored_before_the_log_existed(store: Any) -> None:
    conversations, metrics, sessions = store
    conversation = conversations.create("owner", "default").id
    turn(conversations, conversation, "Kept?", first_token_s=0.7)
    handoff(conversations, conversation, "Lost?")
    conversations.add_feedback("owner", conversation, 1, "down")
    before = metrics.report(MetricsQuery()).total
    with sessions.begin() as s:
        s.execute(delete(ConversationOutcomeRow))  # as a database from before the answer log
        s.execute(delete(AnswerLogRow))

    assert backfill_answer_log(sessions) == 2
    assert metrics.report(MetricsQuery()).total == before
    with sessions() as s:
        assert s.scalars(select(AnswerLogRow.question).order_by(AnswerLogRow.message_id)).all() == ["Kept?", "Lost?"]
    assert backfill_answer_log(sessions) == 0


def test_a_deleted_conversation_leaves_the_figures(store: Any) -> None:
    conversations, metrics, sessions = store
    conversation = conversations.create("owner", "default").id
    turn(conversations, conversation, "Forget me")
    conversations.delete("owner", conversation)
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(AnswerLogRow)) == 0
    assert metrics.report(MetricsQuery()).empty


def test_time_to_first_token_buckets_are_within_five_percent() -> None:
    for seconds in (0.012, 0.4, 1.0, 3.7, 95.0):
        assert bucket_seconds(ttft_bucket(seconds)) == pytest.approx(seconds, rel=0.05)  # type: ignore[arg-type]
    assert ttft_bucket(None) is None


def test_metrics_serves_the_support_figures_from_the_database(services: Any) -> None:
    conversation = services.chat.new_conversation("owner").id
    handoff(services.conversations, conversation, "Anyone there?")
    text = generate_latest(services.support_metrics).decode()
    assert 'ragdesk_support_questions{kb="default",outcome="handed_off"} 1.0' in text
    assert 'ragdesk_support_conversations{kb="default",kind="deflected"} 0.0' in text
