"""Conversation history: stored whole in SQLite, survives a restart, trimmed to a token budget, private per owner."""

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from chatbot.errors import ConversationNotFoundError

pytestmark = pytest.mark.both_databases  # SQLite and PostgreSQL


def test_conversation_survives_reopening_the_database(make_services) -> None:
    services = make_services(chat_model=None)
    conversation = services.chat.new_conversation("browser-1")
    history = services.conversations.history("browser-1", conversation.id)
    history.add_messages(
        [HumanMessage("Where is my parcel?"), AIMessage("It ships tomorrow.", additional_kwargs={"sources": []})]
    )

    reopened = make_services()
    listed = reopened.chat.list_conversations("browser-1")
    assert [c.title for c in listed] == ["Where is my parcel?"]
    turns = reopened.chat.transcript("browser-1", conversation.id)
    assert [(t.question, t.answer) for t in turns] == [("Where is my parcel?", "It ships tomorrow.")]


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(services) -> None:
    engine = services.conversations._sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's own settings")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_memory_keeps_only_the_newest_turns_within_the_token_budget() -> None:
    from langchain_core.messages.utils import count_tokens_approximately

    from chatbot.conversation.prompt_fitting import PromptFitter

    fitter = PromptFitter(count_tokens_approximately, context_window=8192, history_tokens=60, chunk_tokens=900)
    messages = []
    for i in range(20):
        messages += [
            HumanMessage(f"question number {i} " + "word " * 10),
            AIMessage(f"answer number {i} " + "word " * 10),
        ]
    kept = fitter.memory(messages)

    assert 0 < len(kept) < len(messages)
    assert kept[-1].content == messages[-1].content
    assert kept[0].type == "human"
    assert count_tokens_approximately(kept) <= 60


def test_owner_cannot_read_or_delete_another_owners_conversation(services) -> None:
    mine = services.chat.new_conversation("alice")
    with pytest.raises(ConversationNotFoundError):
        services.chat.transcript("mallory", mine.id)
    with pytest.raises(ConversationNotFoundError):
        services.chat.delete_conversation("mallory", mine.id)
    assert services.chat.list_conversations("mallory") == []
    services.chat.delete_conversation("alice", mine.id)
    assert services.chat.list_conversations("alice") == []
