"""Alembic's environment: run on the connection upgrade_database hands in (config.attributes["connection"])."""

from __future__ import annotations

from alembic import context

from chatbot.migrations.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata(), compare_type=True, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
