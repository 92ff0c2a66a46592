"""The chat panel: conversations, knowledge-base selector, streaming answers with sources, feedback; the same
panel on the customer page, in the admin's Chat tab and in the portal widget. Clicks become ChatService calls."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Generator, Iterator
from typing import Any

import gradio as gr

from chatbot.access.identity import browser_visitor, portal_user
from chatbot.conversation.language import detect_language
from chatbot.conversation.service import ChatService
from chatbot.conversation.turns import SourcesFound, TurnEvent, TurnResult, Waiting
from chatbot.errors import RagdeskError
from chatbot.settings import PortalSettings
from chatbot.ui.rendering import answer_in_progress, escape_markdown, render_answer
from chatbot.ui.strings import ui_text, waiting_text

logger = logging.getLogger(__name__)

SORRY = "Sorry, something went wrong on our side. Please try again in a moment."
FEEDBACK_OPTIONS = ("Like", "Dislike", "Wrong answer", "Not helpful", "Outdated")
MAX_PENDING_FEEDBACK = 10_000  # ratings waiting for their answers to be saved, at most
SIGNED_OUT = "Your sign-in could not be verified. Please reload the page in the portal."


class ChatPanel:
    def __init__(self, chat: ChatService, portal: PortalSettings) -> None:
        self.chat = chat
        self.portal = portal
        self._stops: dict[str, threading.Event] = {}  # the browser session's answer being written → its Stop
        # a rating given while its answer was still being written: (owner, conversation, turn) → (rating, reason)
        self._pending_feedback: dict[tuple[str, str, int], tuple[str, str]] = {}

    def render(self, blocks: gr.Blocks, tab: gr.Tab | None, embed: bool = False) -> None:
        """The chat on a page: in the admin's Chat tab (`tab`), on the customer page, or compact in the widget."""
        browser_id = gr.BrowserState(None, storage_key="ragdesk-browser-id")
        # Server-side: "" until the page has loaded, then the token's user or the browser's id; None when the
        # portal's token was refused.
        owner = gr.State("")
        conversation = gr.State(None)
        kb, new_button, conversations, delete_button, chatbot, question, send, stop = _layout(embed)
        load = self._on_embed_load if embed else self._on_load
        opened = blocks.load(
            load, [browser_id], [browser_id, owner, conversations, conversation, chatbot, kb], show_progress="hidden"
        )
        opened.then(lambda: gr.Button(interactive=True), None, [send], queue=False, show_progress="hidden")
        if tab is not None:  # knowledge bases may have changed in the admin tabs meanwhile
            tab.select(self._kb_choices, [kb], [kb])
        kb.input(self._on_kb, [owner], [conversations, conversation, chatbot])
        chat_outputs = [chatbot, question, conversation, conversations]
        controls = [send, question, stop]
        for trigger in (send.click, question.submit):  # while one answer is written, no second question is sent
            answering = trigger(_answering, None, controls, queue=False)
            answering = answering.then(self._on_send, [question, owner, conversation, chatbot, kb], chat_outputs)
            answering.then(_ready, None, controls, queue=False)
        stop.click(self._on_stop, None, None, queue=False)
        new_button.click(self._on_new, [owner, kb], [conversations, conversation, chatbot])
        conversations.input(self._on_switch, [owner, conversations, kb], [conversation, chatbot, kb])
        delete_button.click(self._on_delete, [owner, conversation], [conversations, conversation, chatbot])
        chatbot.like(self._on_feedback, [owner, conversation, chatbot], None)

    # ---- event handlers ------------------------------------------------------------------
    def _on_load(self, browser_id: str | None) -> tuple[Any, ...]:
        visitor = browser_visitor(browser_id)
        return visitor.owner, visitor.owner, *self._opened(visitor.owner, None)

    def _on_embed_load(self, browser_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        params = request.query_params
        kb = params.get("kb") or self.portal.kb
        token = params.get("token")
        if not token:
            visitor = browser_visitor(browser_id)
            return visitor.owner, visitor.owner, *self._opened(visitor.owner, kb, greet=True)
        try:
            user = portal_user(token, self._portal_secret())
        except RagdeskError as e:
            notice = [{"role": "assistant", "content": str(e)}]
            return gr.skip(), None, self._choices(None, None), None, notice, gr.skip()
        opened = self._opened(user.owner, kb, greet=True, name=user.display_name)
        return gr.skip(), user.owner, *opened

    def _opened(self, owner: str, kb: str | None, greet: bool = False, name: str = "") -> tuple[Any, ...]:
        """The owner's latest conversation, or a fresh start (with the greeting on the widget)."""
        listed = self.chat.list_conversations(owner)
        if not listed:
            greeting = f"Hi {name}! {self.portal.greeting}" if name else self.portal.greeting
            # the widget's greeting is the empty chat's placeholder: not an answer, so nothing to rate or copy
            shown: Any = gr.Chatbot(value=[], placeholder=escape_markdown(greeting)) if greet else []
            return self._choices(owner, None), None, shown, self._kb_choices(kb)
        latest = listed[0]
        messages = self._messages(owner, latest.id)
        return self._choices(owner, latest.id), latest.id, messages, self._kb_choices(latest.kb)

    def _portal_secret(self) -> str | None:
        secret = self.portal.jwt_secret
        return secret.get_secret_value() if secret else None

    def _kb_choices(self, selected: str | None) -> Any:
        names = self.chat.knowledge_base_names()
        return gr.Dropdown(choices=names, value=selected if selected in names else self.chat.default_kb)

    def _on_kb(self, owner: str | None) -> tuple[Any, ...]:
        """Another knowledge base: the next question starts a new conversation there."""
        return self._choices(owner, None), None, []

    def _on_new(self, owner: str | None, kb: str | None) -> tuple[Any, ...]:
        if not owner:
            return gr.skip(), None, [{"role": "assistant", "content": _not_ready(owner)}]
        try:
            created = self.chat.new_conversation(owner, kb)
        except RagdeskError as e:
            return gr.skip(), None, [{"role": "assistant", "content": str(e)}]
        return self._choices(owner, created.id), created.id, []

    def _on_switch(self, owner: str, conversation_id: str, kb: str | None) -> tuple[Any, ...]:
        try:
            opened = self.chat.conversation(owner, conversation_id)
            return conversation_id, self._messages(owner, conversation_id), self._kb_choices(opened.kb)
        except RagdeskError as e:
            return None, [{"role": "assistant", "content": str(e)}], gr.skip()

    def _on_feedback(
        self, owner: str | None, conversation_id: str | None, messages: list[dict[str, Any]], event: gr.LikeData
    ) -> None:
        """Thumbs up, thumbs down, or a named reason (a thumbs down with that reason) on one answer."""
        index = int(event.index[0] if isinstance(event.index, list | tuple) else event.index)
        if not owner or conversation_id is None or not _answers_a_question(messages, index):
            return  # the greeting or a notice (the buttons show on every bubble): no answer to rate
        turn = sum(1 for m in messages[:index] if m.get("role") == "user")
        rating, reason = (
            ("up", "") if event.liked is True else ("down", "" if event.liked is False else str(event.liked))
        )
        try:
            self.chat.feedback(owner, conversation_id, turn, rating, reason)
        except RagdeskError:  # rated while still being written: kept until the turn is saved (see _send)
            if len(self._pending_feedback) < MAX_PENDING_FEEDBACK:
                self._pending_feedback[(owner, conversation_id, turn)] = (rating, reason)

    def _on_delete(self, owner: str, conversation_id: str | None) -> tuple[Any, ...]:
        if conversation_id:
            with contextlib.suppress(RagdeskError):
                self.chat.delete_conversation(owner, conversation_id)
        return self._choices(owner, None), None, []

    def _on_send(
        self,
        text: str,
        owner: str,
        conversation_id: str | None,
        messages: list[dict[str, Any]],
        kb: str | None,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        """The answer as it is written; the session's Stop button ends it where it is (see _on_stop)."""
        session = request.session_hash or ""
        self._stops[session] = stop = threading.Event()
        try:
            yield from self._send(text, owner, conversation_id, messages, kb, stop)
        finally:
            if self._stops.get(session) is stop:
                del self._stops[session]

    def _on_stop(self, request: gr.Request) -> None:
        """Stop: the answer being written in this browser session ends at its next word, and the model's slot is
        freed; what was written is kept as the answer."""
        stop = self._stops.get(request.session_hash or "")
        if stop is not None:
            stop.set()

    def _send(
        self,
        text: str,
        owner: str,
        conversation_id: str | None,
        messages: list[dict[str, Any]],
        kb: str | None,
        stop: threading.Event,
    ) -> Iterator[tuple[Any, ...]]:
        if not text.strip():
            yield messages, text, conversation_id, gr.skip()
            return
        if not owner:  # still loading, or the portal's token was refused: nobody to answer for yet
            yield [*messages, {"role": "assistant", "content": _not_ready(owner)}], text, None, gr.skip()
            return
        messages = [*messages, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        reply = messages[-1]
        try:
            if conversation_id is None:
                conversation_id = self.chat.new_conversation(owner, kb).id
            events = self.chat.stream_answer(owner, conversation_id, text, stop)  # titles a new conversation at once
            language = detect_language(text)
            reply["content"] = answer_in_progress("", None, language)
            yield messages, "", conversation_id, self._choices(owner, conversation_id)
            for _ in _shown(events, reply, language):
                yield messages, "", conversation_id, gr.skip()
        except RagdeskError as e:
            failed = str(e)
        except Exception:  # the outermost layer: anything unexpected is logged with its traceback, not shown
            logger.exception("chat turn failed")
            failed = SORRY
        else:
            self._rated_while_written(owner, conversation_id, sum(1 for m in messages if m.get("role") == "user"))
            yield messages, "", conversation_id, self._choices(owner, conversation_id)
            return
        shown = self._not_saved(owner, conversation_id, messages, failed)
        yield shown, text, conversation_id, self._choices(owner, conversation_id)

    def _not_saved(
        self, owner: str, conversation_id: str | None, messages: list[dict[str, Any]], failed: str
    ) -> list[dict[str, Any]]:
        """Nothing was saved: the question goes back into the box to retry (the caller's part), and the chat keeps
        only saved turns (so feedback's turn numbers stay right) plus the notice."""
        turn = sum(1 for m in messages if m["role"] == "user")
        self._pending_feedback.pop((owner, conversation_id or "", turn), None)
        return [*messages[:-2], {"role": "assistant", "content": failed}]

    def _rated_while_written(self, owner: str, conversation_id: str, turn: int) -> None:
        """A thumbs given while this turn's answer was still being written, now that the turn is saved."""
        pending = self._pending_feedback.pop((owner, conversation_id, turn), None)
        if pending is not None:
            with contextlib.suppress(RagdeskError):
                self.chat.feedback(owner, conversation_id, turn, *pending)

    # ---- view helpers --------------------------------------------------------------------
    def _choices(self, owner: str | None, selected: str | None) -> Any:
        listed = self.chat.list_conversations(owner) if owner else []
        several = len({c.kb for c in listed}) > 1
        return gr.Radio(choices=[(f"{c.title} · {c.kb}" if several else c.title, c.id) for c in listed], value=selected)

    def _messages(self, owner: str, conversation_id: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for number, turn in enumerate(self.chat.transcript(owner, conversation_id), start=1):
            messages.append({"role": "user", "content": turn.question})
            answer = render_answer(turn.answer, turn.sources, number, turn.language)
            messages.append({"role": "assistant", "content": answer})
        return messages


def _answers_a_question(messages: list[dict[str, Any]], index: int) -> bool:
    """Whether the bubble at index is an answer: the assistant's message right after a question. A notice (a
    refused question, an error) follows the previous answer instead, and the greeting follows nothing."""
    return 0 < index < len(messages) and messages[index - 1].get("role") == "user"


def _not_ready(owner: str | None) -> str:
    return SIGNED_OUT if owner is None else "The chat is still starting. Please send your message again."


def _layout(embed: bool) -> tuple[Any, ...]:
    """Side by side on a page; in the widget, the chat alone, with the conversations behind a menu."""
    if embed:
        with gr.Sidebar(label=ui_text("conversations"), open=False, width=260, elem_id="conversation-menu"):
            column = _conversation_column(embed)
        return *column, *_chat_column(embed)
    with gr.Row():
        with gr.Column(scale=1, min_width=200):
            column = _conversation_column(embed)
        with gr.Column(scale=3):
            return *column, *_chat_column(embed)


def _conversation_column(embed: bool) -> tuple[Any, ...]:
    kb = gr.Dropdown(label=ui_text("knowledge_base"), choices=[], elem_id="kb", visible=not embed)
    new_button = gr.Button(ui_text("new_conversation"), elem_id="new-conversation", size="sm")
    conversations = gr.Radio(label=ui_text("conversations"), choices=[], elem_id="conversations")
    delete_button = gr.Button(ui_text("delete_conversation"), variant="stop", size="sm")
    return kb, new_button, conversations, delete_button


def _chat_column(embed: bool) -> tuple[Any, ...]:
    chatbot = gr.Chatbot(
        label=ui_text("assistant"),
        show_label=not embed,
        height="calc(100vh - 185px)" if embed else 560,  # the widget's frame: the question box always in view
        elem_id="chat",
        buttons=["copy"],
        feedback_options=FEEDBACK_OPTIONS,
        group_consecutive_messages=False,  # a notice after an answer gets its own bubble
    )
    with gr.Row():
        question = gr.Textbox(
            placeholder=ui_text("placeholder"),
            show_label=False,
            scale=6,
            elem_id="question",
            max_lines=6,
            min_width=120,
        )
        # enabled once the page's load event has told the server who is chatting
        send = gr.Button(ui_text("send"), variant="primary", scale=1, min_width=64, elem_id="send", interactive=False)
        stop = gr.Button(ui_text("stop"), variant="stop", scale=1, min_width=64, elem_id="stop", visible=False)
    return chatbot, question, send, stop


def _shown(events: Generator[TurnEvent, None, None], reply: dict[str, Any], language: str) -> Iterator[None]:
    """The reply bubble as the turn goes: the typing sign, the sources by name, the words so far; at the end the
    answer with its sources. Yields whenever the bubble changed before the end."""
    streamed, sources = "", None
    with contextlib.closing(events):  # however this ends, the turn (and the model) stop with it
        for event in events:
            if isinstance(event, TurnResult):
                reply["content"] = render_answer(event.answer, event.sources, event.turn, event.language)
                return
            if isinstance(event, Waiting):  # many customers at once: the place in line, until answering starts
                reply["content"] = waiting_text(event.position, event.estimated_s, language)
                yield
                continue
            if isinstance(event, SourcesFound):
                sources = event.sources
            else:
                streamed += event.text
            reply["content"] = answer_in_progress(streamed, sources, language)
            yield


def _answering() -> tuple[Any, ...]:
    """Send and the box wait while the answer is written; Stop shows."""
    return gr.Button(interactive=False), gr.Textbox(interactive=False), gr.Button(visible=True)


def _ready() -> tuple[Any, ...]:
    return gr.Button(interactive=True), gr.Textbox(interactive=True), gr.Button(visible=False)
