"""The Gradio user interface: translates clicks into ChatService and uploader calls, nothing else."""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import gradio as gr

from chatbot.errors import RagdeskError
from chatbot.service import AnswerDelta, ChatService, TurnSaved
from knowledge.retriever import Source

logger = logging.getLogger(__name__)

UPLOAD_TYPES = [".pdf", ".docx", ".xlsx", ".pptx", ".txt", ".md", ".html", ".htm", ".csv"]
SORRY = "Sorry, something went wrong on our side. Please try again in a moment."
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_MARKDOWN_EMPHASIS = re.compile(r"(\*\*|__|`)")


class Uploader(Protocol):
    """What the UI needs from ingest (the pipeline is handed in by app.py)."""

    def ingest_files(
        self, files: list[tuple[Path, str]], kb: str, on_file: Callable[[int, int, str], None] | None = None
    ) -> Any: ...


def escape_markdown(text: str) -> str:
    """Show document or user text literally: no markdown formatting, no HTML."""
    text = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def render_answer(answer: str, sources: list[Source]) -> str:
    if not sources:
        return answer
    lines = [answer, "", "**Sources**"]
    for number, source in enumerate(sources, start=1):
        where = f" · {escape_markdown(source.position)}" if source.position else ""
        plain = _MARKDOWN_EMPHASIS.sub("", source.snippet)
        snippet = escape_markdown(plain[:180]) + ("…" if len(plain) > 180 else "")
        lines.append(f"{number}. **{escape_markdown(source.document)}**{where} — {snippet}")
    return "\n".join(lines)


class ChatUI:
    def __init__(self, chat: ChatService, uploader: Uploader, title: str = "RAGDesk") -> None:
        self.chat = chat
        self.uploader = uploader
        self.title = title

    def build(self) -> gr.Blocks:
        with gr.Blocks(title=self.title) as blocks:
            owner = gr.BrowserState(None, storage_key="ragdesk-browser-id")
            conversation = gr.State(None)
            with gr.Row():
                with gr.Column(scale=1, min_width=240):
                    gr.Markdown(f"## {self.title}")
                    new_button = gr.Button("New conversation", elem_id="new-conversation")
                    conversations = gr.Radio(label="Conversations", choices=[], elem_id="conversations")
                    delete_button = gr.Button("Delete conversation", variant="stop", size="sm")
                    with gr.Accordion("Add documents", open=False):
                        files = gr.File(file_count="multiple", file_types=UPLOAD_TYPES, elem_id="upload")
                        upload_button = gr.Button("Add to knowledge base", elem_id="upload-button")
                        upload_report = gr.Markdown(elem_id="upload-report")
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(label="Assistant", height=560, elem_id="chat", buttons=["copy"])
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask about returns, shipping, warranty, your account…",
                            show_label=False,
                            scale=6,
                            elem_id="question",
                            max_lines=6,
                        )
                        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")

            blocks.load(self._on_load, [owner], [owner, conversations, conversation, chatbot])
            chat_outputs = [chatbot, question, conversation, conversations]
            for trigger in (send.click, question.submit):
                trigger(self._on_send, [question, owner, conversation, chatbot], chat_outputs)
            new_button.click(self._on_new, [owner], [conversations, conversation, chatbot])
            conversations.input(self._on_switch, [owner, conversations], [conversation, chatbot])
            delete_button.click(self._on_delete, [owner, conversation], [conversations, conversation, chatbot])
            upload_button.click(self._on_upload, [files], [upload_report, files])
        return blocks

    # ---- event handlers ------------------------------------------------------------------
    def _on_load(self, owner: str | None) -> tuple[Any, ...]:
        owner = owner or str(uuid.uuid4())
        listed = self.chat.list_conversations(owner)
        if not listed:
            return owner, self._choices(owner, None), None, []
        latest = listed[0].id
        return owner, self._choices(owner, latest), latest, self._messages(owner, latest)

    def _on_new(self, owner: str) -> tuple[Any, ...]:
        created = self.chat.new_conversation(owner)
        return self._choices(owner, created.id), created.id, []

    def _on_switch(self, owner: str, conversation_id: str) -> tuple[Any, ...]:
        try:
            return conversation_id, self._messages(owner, conversation_id)
        except RagdeskError as e:
            return None, [{"role": "assistant", "content": str(e)}]

    def _on_delete(self, owner: str, conversation_id: str | None) -> tuple[Any, ...]:
        if conversation_id:
            with contextlib.suppress(RagdeskError):
                self.chat.delete_conversation(owner, conversation_id)
        return self._choices(owner, None), None, []

    def _on_send(
        self, text: str, owner: str, conversation_id: str | None, messages: list[dict[str, Any]]
    ) -> Iterator[tuple[Any, ...]]:
        if not text.strip():
            yield messages, text, conversation_id, gr.skip()
            return
        if conversation_id is None:
            conversation_id = self.chat.new_conversation(owner).id
        messages = [*messages, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        yield messages, "", conversation_id, self._choices(owner, conversation_id)
        reply = messages[-1]
        try:
            for event in self.chat.stream_answer(owner, conversation_id, text):
                if isinstance(event, AnswerDelta):
                    reply["content"] += event.text
                    yield messages, "", conversation_id, gr.skip()
                elif isinstance(event, TurnSaved):
                    reply["content"] = render_answer(event.answer, event.sources)
        except RagdeskError as e:
            reply["content"] = str(e)
        except Exception:
            logger.exception("chat turn failed")
            reply["content"] = SORRY
        yield messages, "", conversation_id, self._choices(owner, conversation_id)

    def _on_upload(
        self,
        paths: list[str] | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio injects the tracker through this default)
    ) -> tuple[str, Any]:
        if not paths:
            return "Choose one or more files first.", gr.skip()

        def on_file(index: int, total: int, name: str) -> None:
            progress((index, total), desc=f"Ingesting {name}", unit="files")

        try:
            report = self.uploader.ingest_files(
                [(Path(p), Path(p).name) for p in paths], self.chat.default_kb, on_file=on_file
            )
        except Exception:
            logger.exception("upload failed")
            return SORRY, gr.skip()
        rows = [
            f"- **{escape_markdown(o.name)}**: {o.status}"
            + (f" ({escape_markdown(o.detail)})" if o.detail else "")
            + (f", {o.chunks} chunks" if o.chunks else "")
            for o in report.outcomes
        ]
        return "\n".join([f"**{report.summary()}**", *rows]), None

    # ---- view helpers --------------------------------------------------------------------
    def _choices(self, owner: str, selected: str | None) -> Any:
        listed = self.chat.list_conversations(owner)
        return gr.Radio(choices=[(c.title, c.id) for c in listed], value=selected)

    def _messages(self, owner: str, conversation_id: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for turn in self.chat.transcript(owner, conversation_id):
            messages.append({"role": "user", "content": turn.question})
            messages.append({"role": "assistant", "content": render_answer(turn.answer, turn.sources)})
        return messages
