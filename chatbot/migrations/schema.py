"""Bring a database to the current schema, keeping what it holds:

- an empty database (or one with only the tables `python -m ingest` makes) gets every table at once and is
  marked current;
- a database made before migrations existed (tables, no alembic_version) is marked at the revision its tables
  match, then upgraded;
- any other is upgraded from the revision it records.

Every upgrade runs in one transaction on PostgreSQL (and per statement batch on SQLite); two replicas starting
at once are serialized by PostgreSQL's advisory lock."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text
from sqlalchemy.orm import sessionmaker

from chatbot.conversation.answer_log import backfill_answer_log

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
LOCK_ID = 7_862_001  # the advisory lock every replica takes while it migrates (PostgreSQL)
# The first table each revision added: a database without alembic_version is at the newest revision whose
# first table it has.
FIRST_TABLES = {"0001": "conversations", "0002": "answer_log", "0003": "keyword_terms"}


def metadata() -> MetaData:
    """Every room's tables on the shared Base (importing a module declares its tables)."""
    import chatbot.access.api_keys
    import chatbot.access.portal_origins
    import chatbot.conversation.answer_log
    import chatbot.conversation.history
    import chatbot.conversation.template_store
    import chatbot.insights.evaluation_gate
    import chatbot.insights.evaluation_sets
    import chatbot.insights.faq
    import chatbot.insights.question_vectors  # noqa: F401
    import knowledge.registry  # noqa: F401
    from knowledge.database import Base

    return Base.metadata


def _matching_revision(tables: set[str]) -> str:
    """The newest revision whose tables, and every earlier revision's, the database has."""
    matching = "0001"
    for revision, table in FIRST_TABLES.items():
        if table not in tables:
            break
        matching = revision
    return matching


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(engine: Engine) -> str:
    """Upgrade to the newest schema, then fill what a revision's new tables need from the data already there
    (once, on the upgrade, not on every start); returns the revision the database was at ("" when empty)."""
    before = _upgrade_schema(engine)
    if before and before < "0002":  # the answer log is new in 0002: log the turns stored before it
        backfill_answer_log(sessionmaker(engine))
    return before


def _upgrade_schema(engine: Engine) -> str:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": LOCK_ID})
        config = alembic_config(connection)
        tables = set(inspect(connection).get_table_names())
        before = current_revision(connection)
        if before is None and "conversations" not in tables:  # empty, or only what `python -m ingest` made
            metadata().create_all(connection)
            command.stamp(config, "head")
            return ""
        if before is None:
            before = _matching_revision(tables)
            logger.info("database made before migrations: its tables are revision %s", before)
            command.stamp(config, before)
        if before != head():
            logger.info("upgrading the database schema from revision %s to %s", before, head())
            command.upgrade(config, "head")
        return before
