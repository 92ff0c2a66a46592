"""The admins' conversation table: search and filters, per-conversation counts done in SQL, paging through 100,000
conversations, and the transcript's no-answer marks and customers' thumbs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from sqlalchemy import insert
from sqlalchemy.orm import sessionmaker

from chatbot.conversation.conversation_search import ConversationQuery
from chatbot.conversation.history import ConversationRow, ConversationStore, FeedbackRow, MessageRow
from chatbot.conversation.turns import NO_RELEVANT_PASSAGE, Timings, TurnResult
from chatbot.ui.conversations_tab import ConversationsTab, conversation_query, page_status
from knowledge.database import create_tables, open_database
from knowledge.registry import KnowledgeBaseRow

pytestmark = pytest.mark.both_databases  # SQLite and PostgreSQL

HANDOFF_REPLY = "I cannot answer that; a colleague will contact you."


def say(services: Any, owner: str, kb: str | None, turns: list[tuple[str, str | None]]) -> str:
    """A conversation whose turns are stored as the chat stores them: (question, answer), None for a handoff."""
    conversation = services.chat.new_conversation(owner, kb)
    history = services.conversations.history(owner, conversation.id)
    for number, (question, answer) in enumerate(turns, start=1):
        result = TurnResult(
            question=question,
            answer=answer or HANDOFF_REPLY,
            sources=[],
            turn=number,
            timings=Timings(0.1, 0.2, 0.3),
            refusal=None if answer else NO_RELEVANT_PASSAGE,
        )
        history.add_messages(
            [HumanMessage(question), AIMessage(result.answer, additional_kwargs=result.stored_extras())]
        )
    return conversation.id


@pytest.fixture
def desk(services: Any) -> dict[str, str]:
    """Three customers' conversations, oldest first: answered and liked, half handed off and disliked, in Billing."""
    services.knowledge.create_knowledge_base("Billing")
    liked = say(services, "alice", None, [("Where is my parcel?", "It ships tomorrow.")])
    services.chat.feedback("alice", liked, 1, "up")
    disliked = say(services, "bob", None, [("Can I return <b>shoes</b>?", "Yes."), ("And socks?", None)])
    services.chat.feedback("bob", disliked, 1, "up")
    services.chat.feedback("bob", disliked, 1, "down", "Wrong: <script>alert(1)</script> shoes are final sale")
    billing = say(services, "carol", "Billing", [("When is the 100% refund paid?", "Within 5 days.")])
    return {"liked": liked, "disliked": disliked, "billing": billing}


def test_search_counts_turns_answers_and_latest_thumbs_per_conversation(services: Any, desk: dict[str, str]) -> None:
    found = services.conversations.search(ConversationQuery())

    assert found.total == 3
    assert [r.id for r in found.rows] == [desk["billing"], desk["disliked"], desk["liked"]]  # latest activity first
    counts = {r.owner: (r.turns, r.answered, r.handed_off, r.thumbs_up, r.thumbs_down) for r in found.rows}
    assert counts == {
        "carol": (1, 1, 0, 0, 0),
        "bob": (2, 1, 1, 0, 1),
        "alice": (1, 1, 0, 1, 0),
    }  # bob changed his mind
    assert [r.title for r in found.rows] == [
        "When is the 100% refund paid?",
        "Can I return <b>shoes</b>?",
        "Where is my parcel?",
    ]
    assert {r.kb for r in found.rows} == {"Billing", services.chat.default_kb}


def test_filters_find_the_unanswered_the_disliked_a_knowledge_base_and_text(
    services: Any, desk: dict[str, str]
) -> None:
    def ids(**filters: Any) -> set[str]:
        return {r.id for r in services.conversations.search(ConversationQuery(**filters)).rows}

    assert ids(unanswered_only=True) == {desk["disliked"]}
    assert ids(thumbs_down_only=True) == {desk["disliked"]}
    assert ids(kb="Billing") == {desk["billing"]}
    assert ids(text="SOCKS") == {desk["disliked"]}  # a later question, any case
    assert ids(text="parcel") == {desk["liked"]}
    assert ids(text="carol") == {desk["billing"]}  # the user
    assert ids(text="100%") == {desk["billing"]}
    assert ids(text="%") == {desk["billing"]}  # a literal percent sign, not a wildcard
    assert ids(text="_") == set()
    assert ids(unanswered_only=True, kb="Billing") == set()
    today = datetime.now(UTC).date()
    assert len(ids(date_from=today, date_to=today)) == 3
    assert ids(date_to=today - timedelta(days=1)) == set()
    assert services.conversations.knowledge_bases() == sorted({"Billing", services.chat.default_kb})


def test_search_is_empty_and_the_tab_says_so_when_there_are_no_conversations(services: Any) -> None:
    found = services.conversations.search(ConversationQuery(page=3))

    assert (found.rows, found.total, found.page, found.pages) == ([], 0, 0, 1)
    assert page_status(found, ConversationQuery(page=3)) == "No conversations yet."
    assert page_status(found, ConversationQuery(unanswered_only=True)) == "No conversations match these filters."
    listing = ConversationsTab(services.conversations, services.insights.sets)._on_search(
        "", False, False, None, "", ""
    )
    assert listing[1:] == ([], "No conversations yet.", 0, [])


def test_transcript_shows_the_no_answer_mark_and_the_thumbs_down_reason_as_text(
    services: Any, desk: dict[str, str]
) -> None:
    shown = ConversationsTab(services.conversations, services.insights.sets).transcript(desk["disliked"])

    first, second = shown.split("#### Turn 2")
    assert "👎 **Customer:** Wrong: &lt;script&gt;alert\\(1\\)&lt;/script&gt; shoes are final sale" in first
    assert "No answer" not in first
    assert f"⚠ **No answer** — handed off: {NO_RELEVANT_PASSAGE}" in second
    assert "👍" not in shown  # the later rating replaced the first
    assert "👎" not in second  # turn 2 was not rated
    assert "Can I return &lt;b&gt;shoes&lt;/b&gt;?" in first
    assert "<b>" not in shown
    assert "<script>" not in shown


def test_the_tab_pages_and_filters_and_explains_a_bad_date(services: Any, desk: dict[str, str]) -> None:
    tab = ConversationsTab(services.conversations, services.insights.sets)
    _choices, rows, status, page, ids = tab._on_search("", False, True, None, "", "")
    assert (status, page, ids) == ("Page 1 of 1 · 1 conversation", 0, [desk["disliked"]])
    assert rows[0][2:] == ["bob", "Can I return <b>shoes</b>?", 2, 1, 1, 0, 1]
    assert tab._on_next("", False, False, None, "", "", 0)[2] == "Page 1 of 1 · 3 conversations"  # no page 2

    refused = tab._on_search("", False, False, None, "2025-13-01", "")
    assert "**From** is not a date: “2025\\-13\\-01”" in refused[2]
    assert "YYYY-MM-DD" in refused[2]
    assert conversation_query("  socks ", True, False, "All knowledge bases", "2025-01-31", " ") == ConversationQuery(
        text="socks", unanswered_only=True, date_from=date(2025, 1, 31)
    )


# ---- 100,000 conversations ----------------------------------------------------------------------------------
START = datetime(2025, 1, 1, tzinfo=UTC)
MANY = 100_000


def fill_many(url: str, count: int = MANY) -> ConversationStore:
    """`count` conversations in one SQLite file, by bulk inserts. Conversation i: last active START + i minutes,
    1 + i % 3 turns, the first handed off when i % 10 == 0, in "billing" when i % 4 == 0; its first answer rated
    down when i % 50 == 0 and up when i % 7 == 0 (down first, then up, when both: the latest rating counts)."""
    engine = open_database(url)
    create_tables(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    conversations, messages, feedback = [], [], []
    for i in range(count):
        conversations.append(
            {"id": f"c{i:06d}", "owner": f"user-{i % 1000}", "kb": "default" if i % 4 else "billing"}
            | {"title": f"Question {i}?", "created_at": START, "updated_at": START + timedelta(minutes=i)}
        )
        for turn in range(1 + i % 3):
            asked = f"Question {i}?" if turn == 0 else f"And more about {i}?"
            messages.append(
                {"id": len(messages) + 1, "conversation_id": f"c{i:06d}", "role": "human", "content": asked}
            )
            answered = not (turn == 0 and i % 10 == 0)
            answer = {
                "conversation_id": f"c{i:06d}",
                "role": "ai",
                "content": "An answer.",
                "extra": {"answered": answered},
            }
            messages.append({"id": len(messages) + 1, **answer})
            if turn == 0:
                ratings = ["down"] * (i % 50 == 0) + ["up"] * (i % 7 == 0)
                feedback += [{"message_id": len(messages), "rating": r, "reason": "no"} for r in ratings]
    with sessions.begin() as s:
        s.add_all(
            [
                KnowledgeBaseRow(name="default", collection="c-default"),
                KnowledgeBaseRow(name="billing", collection="c-billing"),
            ]
        )
    with sessions.begin() as s:
        s.execute(insert(ConversationRow), conversations)
        s.execute(insert(MessageRow), [{"extra": {}, "created_at": START, **m} for m in messages])
        s.execute(insert(FeedbackRow), [{"created_at": START, **f} for f in feedback])
    return ConversationStore(sessions)


def multiples(of: int, below: int = MANY) -> int:
    return -(-below // of)


@pytest.mark.slow
def test_search_pages_and_filters_100000_conversations(tmp_path: Path) -> None:
    store = fill_many(f"sqlite:///{tmp_path / 'many.db'}")

    first = store.search(ConversationQuery())
    assert (first.total, first.pages, len(first.rows)) == (MANY, 2000, 50)
    assert [r.id for r in first.rows] == [f"c{i:06d}" for i in range(99_999, 99_949, -1)]
    row = first.rows[49]  # i = 99,950: three turns, the first handed off and rated down
    assert (row.id, row.turns, row.answered, row.handed_off, row.thumbs_up, row.thumbs_down) == (
        "c099950",
        3,
        2,
        1,
        0,
        1,
    )
    row = store.search(ConversationQuery(page=3)).rows[0]  # i = 99,849: one turn, answered, not rated
    assert (row.id, row.turns, row.answered, row.handed_off, row.thumbs_up, row.thumbs_down) == (
        "c099849",
        1,
        1,
        0,
        0,
        0,
    )
    last = store.search(ConversationQuery(page=5000))  # past the end: the last page
    assert (last.page, [r.id for r in last.rows][-2:]) == (1999, ["c000001", "c000000"])
    zero = last.rows[-1]  # i = 0: one turn, handed off, rated down then up
    assert (zero.turns, zero.answered, zero.handed_off, zero.thumbs_up, zero.thumbs_down) == (1, 0, 1, 1, 0)

    def total(**filters: Any) -> int:
        return store.search(ConversationQuery(**filters)).total

    assert total(unanswered_only=True) == multiples(10)
    assert total(thumbs_down_only=True) == multiples(50) - multiples(350)
    assert total(kb="billing") == multiples(4)
    assert total(unanswered_only=True, thumbs_down_only=True, kb="billing") == multiples(100) - multiples(700)
    assert total(date_from=date(2025, 1, 2), date_to=date(2025, 1, 3)) == 2 * 1440
    assert total(date_from=date(2025, 3, 1)) == MANY - 59 * 1440
    assert total(text="question 1234?") == 1
    assert total(text="Question 1234") == 11  # 1234 and 12340 to 12349
    assert [r.id for r in store.search(ConversationQuery(text="more about 77777?")).rows] == ["c077777"]
    disliked = store.search(ConversationQuery(thumbs_down_only=True, page=1)).rows
    assert [r.id for r in disliked[:2]] == ["c097050", "c097000"]  # 50 a page; multiples of 350 were liked last
    assert all(r.thumbs_down == 1 and r.thumbs_up == 0 for r in disliked)
