"""The Knowledge tab's document table: every cell says something; a column that does not apply shows a dash."""

from __future__ import annotations

from datetime import UTC, datetime

from chatbot.ui.knowledge_tab import DOCUMENT_COLUMNS, document_rows
from knowledge.registry import DocumentInfo


def _document(name: str, pages: int | None) -> DocumentInfo:
    return DocumentInfo(1, "default", name, "hash", 2048, 3, "ingested", datetime(2026, 12, 7, tzinfo=UTC), pages)


def test_pages_show_for_a_pdf_and_a_dash_where_none_apply() -> None:
    column = DOCUMENT_COLUMNS.index("Pages / slides / sheets")

    rows = document_rows([_document("manual.pdf", 12), _document("faq.md", None), _document("prices.csv", None)])

    assert [row[column] for row in rows] == [12, "—", "—"]
    assert all(cell != "" for row in rows for cell in row)
