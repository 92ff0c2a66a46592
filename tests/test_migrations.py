"""Schema migrations: a database at the previous release's schema, with a customer's conversation, a document and
a template in it, is upgraded on start and keeps all of it; one made before migrations existed is recognised; an
empty one is made at the newest revision; and after any of these the tables are exactly what the code declares
(a model changed without a revision fails here)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from chatbot.insights.support_metrics import MetricsQuery
from chatbot.migrations.schema import alembic_config, current_revision, head, metadata, upgrade_database
from knowledge.database import open_database

pytestmark = pytest.mark.both_databases
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ROWS = [
    ("knowledge_bases", {"id": 1, "name": "default", "collection": "kb-default-old", "status": "ready",
                         "created_at": NOW}),
    ("documents", {"id": 1, "kb": "default", "name": "returns.md", "content_hash": "h" * 64, "size_bytes": 120,
                   "pages": None, "chunk_count": 1, "status": "ready", "created_at": NOW, "updated_at": NOW}),
    ("chunks", {"id": "c1", "document_id": 1, "kb": "default", "ordinal": 0, "text": "Returns › You have 30 days.",
                "meta": json.dumps({"title": "Returns"})}),
    ("template_versions", {"id": 1, "kb": "default", "version": 1, "note": "warmer", "active": True, "created_at": NOW,
                           "template": json.dumps({"system_prompt": "Be warm. {context}", "no_answer_reply": "?"})}),
    ("conversations", {"id": "conv-1", "owner": "local:user:ann", "kb": "default", "title": "How long?",
                       "created_at": NOW, "updated_at": NOW}),
    ("messages", {"id": 1, "conversation_id": "conv-1", "role": "human", "content": "How long do I have?",
                  "extra": "{}", "created_at": NOW}),
    ("messages", {"id": 2, "conversation_id": "conv-1", "role": "ai", "content": "You have 30 days [1].",
                  "extra": json.dumps({"answered": True, "language": "en", "first_token_s": 0.4}), "created_at": NOW}),
    ("messages", {"id": 3, "conversation_id": "conv-1", "role": "human", "content": "Do you ship to Mars?",
                  "extra": "{}", "created_at": NOW}),
    ("messages", {"id": 4, "conversation_id": "conv-1", "role": "ai", "content": "Please contact us.",
                  "extra": json.dumps({"answered": False, "language": "en", "refusal": "x"}), "created_at": NOW}),
    ("feedback", {"id": 1, "message_id": 2, "rating": "up", "reason": "clear", "created_at": NOW}),
]  # fmt: skip


def previous_release(url: str, with_version_table: bool = True) -> None:
    """The database as the previous release left it: its schema (revision 0001), a customer's data."""
    engine = open_database(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        for table, row in ROWS:
            columns = ", ".join(row)
            connection.execute(text(f"INSERT INTO {table} ({columns}) VALUES (:{', :'.join(row)})"), row)
        if not with_version_table:
            connection.execute(text("DROP TABLE alembic_version"))
    engine.dispose()


def schema_differences(url: str) -> list[Any]:
    engine = open_database(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata())
    engine.dispose()
    return differences


def test_an_upgrade_on_start_keeps_every_conversation_document_and_template(database_url: str, make_services) -> None:  # type: ignore[no-untyped-def]
    previous_release(database_url)
    services = make_services(database_url=database_url)  # the app's start: upgrades the schema

    conversation = services.conversations.get("local:user:ann", "conv-1")
    assert conversation.title == "How long?"
    turns = services.conversations.transcript("local:user:ann", "conv-1")
    assert [(t.question, t.answer, t.answered) for t in turns] == [
        ("How long do I have?", "You have 30 days [1].", True),
        ("Do you ship to Mars?", "Please contact us.", False),
    ]
    assert services.conversations.feedback("conv-1") == {1: ("up", "clear")}
    assert [d.name for d in services.knowledge.list_documents("default")] == ["returns.md"]
    active = services.templates.active("default")
    assert (active.version, active.note, active.template.system_prompt) == (1, "warmer", "Be warm. {context}")
    total = services.insights.metrics.report(MetricsQuery()).total  # the old turns, logged on the upgrade
    assert (total.questions, total.handed_off, total.thumbs_up, total.conversations, total.deflected) == (2, 1, 1, 1, 0)
    assert [t.examples for t in services.insights.gaps.topics()] == [["Do you ship to Mars?"]]

    with opened(database_url) as engine, engine.connect() as connection:
        assert current_revision(connection) == head()
    assert schema_differences(database_url) == []


def test_a_database_made_before_migrations_is_recognised_and_upgraded(database_url: str) -> None:
    previous_release(database_url, with_version_table=False)
    with opened(database_url) as engine:
        assert upgrade_database(engine) == "0001"
        assert upgrade_database(engine) == head()  # the next start: nothing to do
    assert schema_differences(database_url) == []


def test_an_empty_database_is_made_at_the_newest_revision(database_url: str) -> None:
    with opened(database_url) as engine:
        assert upgrade_database(engine) == ""
        assert {"answer_log", "conversations", "alembic_version"} <= set(inspect(engine).get_table_names())
    assert schema_differences(database_url) == []


def test_the_revisions_build_the_same_schema_as_the_code(database_url: str) -> None:
    with opened(database_url) as engine, engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")  # every revision, from nothing
    assert schema_differences(database_url) == []


@contextlib.contextmanager
def opened(url: str) -> Iterator[Engine]:
    engine = open_database(url)
    try:
        yield engine
    finally:
        engine.dispose()
