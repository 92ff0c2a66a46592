"""The Insights tab: the answer log and conversation outcomes (filled from the stored history on the next
start), FAQ entries, test sets, template activations and kept question vectors."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_faq_entries()
    _create_eval_cases()
    _create_template_activations()
    _create_conversation_outcomes()
    _create_answer_log()
    _create_faq_questions()
    _create_question_vectors()


def downgrade() -> None:
    op.drop_table("question_vectors")
    op.drop_index(op.f("ix_faq_questions_faq_id"), table_name="faq_questions")
    op.drop_table("faq_questions")
    op.drop_index("ix_answer_log_kb_day", table_name="answer_log")
    op.drop_index("ix_answer_log_day", table_name="answer_log")
    op.drop_index("ix_answer_log_conversation", table_name="answer_log")
    op.drop_table("answer_log")
    op.drop_index("ix_conversation_outcomes_kb_day", table_name="conversation_outcomes")
    op.drop_index("ix_conversation_outcomes_day", table_name="conversation_outcomes")
    op.drop_table("conversation_outcomes")
    op.drop_index(op.f("ix_template_activations_kb"), table_name="template_activations")
    op.drop_table("template_activations")
    op.drop_index(op.f("ix_eval_cases_kb"), table_name="eval_cases")
    op.drop_table("eval_cases")
    op.drop_index(op.f("ix_faq_entries_topic"), table_name="faq_entries")
    op.drop_index(op.f("ix_faq_entries_kb"), table_name="faq_entries")
    op.drop_table("faq_entries")


def _create_faq_entries() -> None:
    op.create_table(
        "faq_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kb", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("message_ids", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("written_by", sa.String(length=200), nullable=False),
        sa.Column("document", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_faq_entries_kb"), "faq_entries", ["kb"], unique=False)
    op.create_index(op.f("ix_faq_entries_topic"), "faq_entries", ["topic"], unique=False)


def _create_eval_cases() -> None:
    op.create_table(
        "eval_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kb", sa.String(length=100), nullable=False),
        sa.Column("question_key", sa.String(length=40), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("should_refuse", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["kb"], ["knowledge_bases.name"], onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kb", "question_key", name="uq_eval_cases_kb_question"),
    )
    op.create_index(op.f("ix_eval_cases_kb"), "eval_cases", ["kb"], unique=False)


def _create_template_activations() -> None:
    op.create_table(
        "template_activations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kb", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("replaced", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("replaced_score", sa.Float(), nullable=True),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("overridden", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("activated_by", sa.String(length=200), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["kb"], ["knowledge_bases.name"], onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_template_activations_kb"), "template_activations", ["kb"], unique=False)


def _create_conversation_outcomes() -> None:
    op.create_table(
        "conversation_outcomes",
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("kb", sa.String(length=100), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("handed_off", sa.Boolean(), nullable=False),
        sa.Column("disliked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["kb"], ["knowledge_bases.name"], onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    op.create_index(
        "ix_conversation_outcomes_day", "conversation_outcomes", ["first_day", "handed_off", "disliked"], unique=False
    )
    op.create_index(
        "ix_conversation_outcomes_kb_day",
        "conversation_outcomes",
        ["kb", "first_day", "handed_off", "disliked"],
        unique=False,
    )


def _create_answer_log() -> None:
    op.create_table(
        "answer_log",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("kb", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("handed_off", sa.Boolean(), nullable=False),
        sa.Column("refused_by_check", sa.Boolean(), nullable=False),
        sa.Column("trimmed", sa.Boolean(), nullable=False),
        sa.Column("first_token_bucket", sa.Integer(), nullable=True),
        sa.Column("rating", sa.String(length=4), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["kb"], ["knowledge_bases.name"], onupdate="CASCADE", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_answer_log_conversation", "answer_log", ["conversation_id"], unique=False)
    op.create_index(
        "ix_answer_log_day",
        "answer_log",
        ["day", "first_token_bucket", "handed_off", "refused_by_check", "trimmed", "rating"],
        unique=False,
    )
    op.create_index(
        "ix_answer_log_kb_day",
        "answer_log",
        ["kb", "day", "first_token_bucket", "handed_off", "refused_by_check", "trimmed", "rating"],
        unique=False,
    )


def _create_faq_questions() -> None:
    op.create_table(
        "faq_questions",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("faq_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["faq_id"], ["faq_entries.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index(op.f("ix_faq_questions_faq_id"), "faq_questions", ["faq_id"], unique=False)


def _create_question_vectors() -> None:
    op.create_table(
        "question_vectors",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
