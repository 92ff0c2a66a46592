"""The Knowledge tab (admin): knowledge bases, uploads with a per-file report, the document table, chunk preview."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import gradio as gr

from chatbot.errors import RagdeskError
from chatbot.ui.rendering import escape_markdown
from knowledge.registry import DocumentInfo
from knowledge.service import KnowledgeService

logger = logging.getLogger(__name__)

UPLOAD_TYPES = [".pdf", ".docx", ".xlsx", ".pptx", ".txt", ".md", ".html", ".htm", ".csv"]
SORRY = "Sorry, something went wrong on our side. Please try again in a moment."
DOCUMENT_COLUMNS = ["Name", "Type", "Size", "Pages / slides / sheets", "Chunks", "Status", "Ingested at"]
CHUNK_COLUMNS = ["#", "Position", "Characters", "Text the retriever sees"]


class Uploader(Protocol):
    """What the tab needs from ingest (the pipeline is handed in by app.py)."""

    def ingest_files(
        self, files: list[tuple[Path, str]], kb: str, on_file: Callable[[int, int, str], None] | None = None
    ) -> Any: ...


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def document_rows(documents: list[DocumentInfo]) -> list[list[Any]]:
    return [
        [
            d.name,
            d.kind,
            human_size(d.size_bytes),
            d.pages if d.pages is not None else "—",  # pages, slides or sheets; a dash where none apply
            d.chunk_count,
            d.status,
            _when(d.updated_at),
        ]
        for d in documents
    ]


def report_markdown(report: Any) -> str:
    rows = [
        f"- **{escape_markdown(o.name)}**: {o.status}"
        + (f" ({escape_markdown(o.detail)})" if o.detail else "")
        + (f", {o.chunks} chunks" if o.chunks else "")
        for o in sorted(report.outcomes, key=lambda o: o.status != "failed")  # failures first, then as given
    ]
    return "\n".join([f"**{report.summary()}**", *rows])


def _bases_panel() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["kb"] = gr.Dropdown(label="Knowledge base", choices=[], elem_id="kb-admin", scale=2)
        c["kb_summary"] = gr.Markdown(elem_id="kb-summary")
    with gr.Accordion("Create, rename or delete knowledge bases", open=False, elem_id="kb-manage"):
        with gr.Row():
            c["new_name"] = gr.Textbox(label="Name", placeholder="e.g. Billing", elem_id="kb-name", scale=3)
            c["create"] = gr.Button("Create", elem_id="kb-create", scale=1)
            c["rename"] = gr.Button("Rename selected", elem_id="kb-rename", scale=1)
        with gr.Row():
            c["confirm"] = gr.Textbox(
                label="To delete the selected knowledge base with its documents and conversations, type its name",
                elem_id="kb-confirm",
                scale=3,
            )
            c["delete_kb"] = gr.Button("Delete knowledge base", variant="stop", elem_id="kb-delete", scale=1)
        c["kb_message"] = gr.Markdown(elem_id="kb-message")
    return c


def _documents_panel() -> dict[str, Any]:
    gr.Markdown("### Add documents")
    c: dict[str, Any] = {"files": gr.File(file_count="multiple", file_types=UPLOAD_TYPES, elem_id="upload")}
    c["upload"] = gr.Button("Add to knowledge base", variant="primary", elem_id="upload-button")
    c["upload_report"] = gr.Markdown(elem_id="upload-report")
    gr.Markdown("### Documents")
    c["table"] = gr.Dataframe(headers=DOCUMENT_COLUMNS, interactive=False, elem_id="documents", wrap=True)
    with gr.Row():
        c["document"] = gr.Dropdown(label="Document", choices=[], elem_id="document", scale=3)
        c["preview"] = gr.Button("Preview chunks", elem_id="preview", scale=1)
        c["delete_doc"] = gr.Button("Delete document", variant="stop", elem_id="delete-document", scale=1)
    with gr.Row(visible=False) as confirm_row:
        c["confirm_text"] = gr.Markdown()
        c["yes"] = gr.Button("Yes, delete it", variant="stop", elem_id="confirm-delete-document")
        c["cancel"] = gr.Button("Cancel")
    c["confirm_row"] = confirm_row
    c["document_message"] = gr.Markdown(elem_id="document-message")
    c["chunks"] = gr.Dataframe(headers=CHUNK_COLUMNS, interactive=False, wrap=True, elem_id="chunks")
    return c


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


class KnowledgeTab:
    """Renders into the enclosing gr.Tab; every handler is one KnowledgeService or uploader call."""

    def __init__(self, knowledge: KnowledgeService, uploader: Uploader, default_kb: Callable[[], str]) -> None:
        self.knowledge = knowledge
        self.uploader = uploader
        self.default_kb = default_kb

    def render(self, tab: gr.Tab) -> None:
        c = {**_bases_panel(), **_documents_panel()}
        kb, new_name, kb_message, document = c["kb"], c["new_name"], c["kb_message"], c["document"]
        listing = [kb, c["kb_summary"], c["table"], document, c["chunks"]]
        tab.select(self._on_show, [kb], listing)
        kb.input(self._on_show, [kb], listing)
        c["create"].click(self._on_create, [new_name], [*listing, kb_message, new_name])
        c["rename"].click(self._on_rename, [kb, new_name], [*listing, kb_message, new_name])
        c["delete_kb"].click(self._on_delete_kb, [kb, c["confirm"]], [*listing, kb_message, c["confirm"]])
        c["upload"].click(self._on_upload, [kb, c["files"]], [c["upload_report"], c["files"], *listing])
        c["table"].select(self._on_row, [kb], [document, c["chunks"]])
        document.input(self._on_preview, [kb, document], [c["chunks"]])
        c["preview"].click(self._on_preview, [kb, document], [c["chunks"]])
        c["delete_doc"].click(self._on_ask_delete, [document], [c["confirm_row"], c["confirm_text"]])
        c["cancel"].click(lambda: gr.Row(visible=False), None, [c["confirm_row"]])
        deleted = [c["confirm_row"], c["document_message"], *listing]
        c["yes"].click(self._on_delete_document, [kb, document], deleted)

    # ---- handlers ------------------------------------------------------------------------
    def _listing(self, selected: str | None) -> tuple[Any, ...]:
        bases = self.knowledge.knowledge_bases()
        names = [b.name for b in bases]
        if selected not in names:
            selected = self.default_kb() if names else None  # the default, or the first when it is gone
        info = next((b for b in bases if b.name == selected), None)
        documents = self.knowledge.list_documents(selected) if selected else []
        summary = f"{info.documents} documents, {info.chunks} chunks" if info else "No knowledge base yet."
        return (
            gr.Dropdown(choices=names, value=selected),
            summary,
            document_rows(documents),
            gr.Dropdown(choices=[d.name for d in documents], value=None),
            [],
        )

    def _on_show(self, kb: str | None) -> tuple[Any, ...]:
        return self._listing(kb)

    def _on_create(self, name: str) -> tuple[Any, ...]:
        try:
            created = self.knowledge.create_knowledge_base(name)
        except RagdeskError as e:
            return *self._listing(None), str(e), gr.skip()
        return *self._listing(created.name), f"Created **{escape_markdown(created.name)}**.", ""

    def _on_rename(self, kb: str | None, name: str) -> tuple[Any, ...]:
        if not kb:
            return *self._listing(None), "Choose a knowledge base first.", gr.skip()
        try:
            renamed = self.knowledge.rename_knowledge_base(kb, name)
        except RagdeskError as e:
            return *self._listing(kb), str(e), gr.skip()
        return *self._listing(renamed.name), f"Renamed to **{escape_markdown(renamed.name)}**.", ""

    def _on_delete_kb(self, kb: str | None, typed: str) -> tuple[Any, ...]:
        if not kb:
            return *self._listing(None), "Choose a knowledge base first.", gr.skip()
        if typed.strip() != kb:
            message = f"Type the name **{escape_markdown(kb)}** exactly to confirm the deletion."
            return *self._listing(kb), message, gr.skip()
        try:
            self.knowledge.delete_knowledge_base(kb)
        except RagdeskError as e:
            return *self._listing(kb), str(e), gr.skip()
        return *self._listing(None), f"Deleted **{escape_markdown(kb)}**.", ""

    def _on_upload(
        self,
        kb: str | None,
        paths: list[str] | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio injects the tracker through this default)
    ) -> tuple[Any, ...]:
        if not kb:
            return "Create or choose a knowledge base first.", gr.skip(), *self._listing(None)
        if not paths:
            return "Choose one or more files first.", gr.skip(), *self._listing(kb)

        def on_file(index: int, total: int, name: str) -> None:
            progress((index, total), desc=f"Ingesting {name}", unit="files")

        try:
            report = self.uploader.ingest_files([(Path(p), Path(p).name) for p in paths], kb, on_file=on_file)
        except RagdeskError as e:
            return str(e), gr.skip(), *self._listing(kb)
        except Exception:  # the outermost layer: anything unexpected is logged with its traceback, not shown
            logger.exception("upload failed")
            return SORRY, gr.skip(), *self._listing(kb)
        return report_markdown(report), None, *self._listing(kb)

    def _on_row(self, kb: str | None, event: gr.SelectData) -> tuple[Any, ...]:
        name = str(event.row_value[0]) if event.row_value else None
        return gr.Dropdown(value=name), self._on_preview(kb, name)

    def _on_preview(self, kb: str | None, name: str | None) -> list[list[Any]]:
        if not kb or not name:
            return []
        try:
            records = self.knowledge.document_chunks(kb, name)
        except RagdeskError:
            return []
        return [
            [r.metadata.get("ordinal", i) + 1, r.metadata.get("position", ""), len(r.text), r.text]
            for i, r in enumerate(records)
        ]

    def _on_ask_delete(self, name: str | None) -> tuple[Any, ...]:
        if not name:
            return gr.Row(visible=False), ""
        return gr.Row(visible=True), f"Delete **{escape_markdown(name)}**? Its chunks leave the search index at once."

    def _on_delete_document(self, kb: str | None, name: str | None) -> tuple[Any, ...]:
        if not kb or not name:
            return gr.Row(visible=False), "Choose a document first.", *self._listing(kb)
        removed = self.knowledge.remove_document(kb, name)
        message = (
            f"Deleted **{escape_markdown(name)}**." if removed else f"**{escape_markdown(name)}** was already gone."
        )
        return gr.Row(visible=False), message, *self._listing(kb)
