"""The keyword index in the database: postings per chunk and token, and each chunk's length (filled from the
stored chunks on the next start)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _create_keyword_chunks()
    _create_keyword_terms()


def downgrade() -> None:
    op.drop_index("ix_keyword_terms_kb_token", table_name="keyword_terms")
    op.drop_table("keyword_terms")
    op.drop_index("ix_keyword_chunks_kb", table_name="keyword_chunks")
    op.drop_table("keyword_chunks")


def _create_keyword_chunks() -> None:
    op.create_table(
        "keyword_chunks",
        sa.Column("chunk_id", sa.String(length=64), nullable=False),
        sa.Column("kb", sa.String(length=100), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["chunks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["kb"], ["knowledge_bases.name"], onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("chunk_id"),
    )
    op.create_index("ix_keyword_chunks_kb", "keyword_chunks", ["kb", "length"], unique=False)


def _create_keyword_terms() -> None:
    op.create_table(
        "keyword_terms",
        sa.Column("chunk_id", sa.String(length=64), nullable=False),
        sa.Column("token", sa.String(length=100), nullable=False),
        sa.Column("kb", sa.String(length=100), nullable=False),
        sa.Column("tf", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["chunks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["kb"], ["knowledge_bases.name"], onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("chunk_id", "token"),
    )
    op.create_index(
        "ix_keyword_terms_kb_token", "keyword_terms", ["kb", "token", "chunk_id", "tf", "length"], unique=False
    )
