"""The Conversations tab (admin): every customer's conversations in a searchable, filtered, paged table, and the
transcript of the one picked, with what customers never see: the chain-of-thought reasoning, the turns that were
handed off, the customers' thumbs and the template version that answered."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import gradio as gr

from chatbot.conversation.conversation_search import ConversationPage, ConversationQuery, ConversationSummary
from chatbot.conversation.history import ConversationStore
from chatbot.conversation.turns import CheckedSentence, Turn
from chatbot.errors import ConversationNotFoundError, RagdeskError
from chatbot.insights.evaluation_sets import CaseDraft, EvaluationSets
from chatbot.ui.rendering import escape_markdown, render_answer

COLUMNS = ["Date", "Knowledge base", "User", "Title (first question)", "Turns", "Answered", "Handed off", "👍", "👎"]
ALL_KBS = "All knowledge bases"
LANGUAGES = {"zh": "Chinese", "other": "other language"}
CITATION_MARK = re.compile(r"\s*\[\d+\]")  # an answer's [n] markers are not part of what is expected


class ConversationsTab:
    """Renders into the enclosing gr.Tab; the table is one ConversationStore.search per page."""

    def __init__(self, conversations: ConversationStore, test_sets: EvaluationSets) -> None:
        self.conversations = conversations
        self.test_sets = test_sets

    def render(self, tab: gr.Tab) -> None:
        filters, search = _filter_panel()
        table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, elem_id="conversations-table")
        with gr.Row():
            previous = gr.Button("← Previous", elem_id="conversations-previous", scale=1)
            status = gr.Markdown(elem_id="conversations-status")
            following = gr.Button("Next →", elem_id="conversations-next", scale=1)
        transcript = gr.Markdown(elem_id="admin-transcript")
        opened = gr.State("")
        with gr.Row(equal_height=True):
            turn = gr.Number(label="Turn", value=1, precision=0, minimum=1, elem_id="promote-turn", scale=0)
            good = gr.Button("Good answer: add to the test set", elem_id="promote-good")
            refuse = gr.Button("Should have refused: add to the test set", elem_id="promote-refuse")
            promoted = gr.Markdown(elem_id="promote-message")
        good.click(self._on_promote(should_refuse=False), [opened, turn], [promoted])
        refuse.click(self._on_promote(should_refuse=True), [opened, turn], [promoted])
        page, ids = gr.State(0), gr.State([])
        listing = [filters[3], table, status, page, ids]
        tab.select(self._on_search, filters, listing)
        search.click(self._on_search, filters, listing)
        for box in (filters[0], filters[4], filters[5]):
            box.submit(self._on_search, filters, listing)
        for choice in filters[1:4]:
            choice.input(self._on_search, filters, listing)
        previous.click(self._on_previous, [*filters, page], listing)
        following.click(self._on_next, [*filters, page], listing)
        table.select(self._on_row, [ids], [transcript, opened])

    # ---- handlers ------------------------------------------------------------------------
    def _on_search(self, *filters: Any) -> tuple[Any, ...]:
        return self._listing(filters, 0)

    def _on_previous(self, *filters_and_page: Any) -> tuple[Any, ...]:
        *filters, page = filters_and_page
        return self._listing(tuple(filters), page - 1)

    def _on_next(self, *filters_and_page: Any) -> tuple[Any, ...]:
        *filters, page = filters_and_page
        return self._listing(tuple(filters), page + 1)

    def _on_row(self, ids: list[str], event: gr.SelectData) -> tuple[str, str]:
        row = event.index[0] if isinstance(event.index, list | tuple) else event.index
        if not isinstance(row, int) or not 0 <= row < len(ids):
            return "", ""
        return self.transcript(ids[row]), ids[row]

    def _on_promote(self, should_refuse: bool):  # type: ignore[no-untyped-def]
        def promote(conversation_id: str, turn: float | None) -> str:
            """The opened conversation's turn as a test case: its answer expected, or a refusal."""
            if not conversation_id:
                return "Open a conversation first."
            try:
                owner = self.conversations.owner_of(conversation_id)
                kb = self.conversations.get(owner, conversation_id).kb
                turns = self.conversations.transcript(owner, conversation_id)
                chosen = turns[int(turn or 0) - 1] if 1 <= int(turn or 0) <= len(turns) else None
                if chosen is None:
                    return f"This conversation has turns 1 to {len(turns)}."
                if not should_refuse and not chosen.answered:
                    return "That turn was handed off: there is no answer to expect. Mark it 'should have refused'?"
                expected = "" if should_refuse else CITATION_MARK.sub("", chosen.answer)
                self.test_sets.add(
                    kb, CaseDraft(chosen.question, expected, should_refuse), origin=_origin(should_refuse)
                )
            except RagdeskError as e:
                return str(e)
            what = "a refusal" if should_refuse else "this answer"
            return f"Added to the test set of '{escape_markdown(kb)}': turn {int(turn or 0)}, expecting {what}."

        return promote

    # ---- what the handlers show ----------------------------------------------------------
    def _listing(self, filters: tuple[Any, ...], page: int) -> tuple[Any, ...]:
        """The knowledge-base choices, the page's rows, the status line, the page number and the rows' ids."""
        text, unanswered_only, thumbs_down_only, kb, date_from, date_to = filters
        bases = self.conversations.knowledge_bases()
        kb = kb if kb in bases else ALL_KBS
        kb_choices = gr.Dropdown(choices=[ALL_KBS, *bases], value=kb)
        try:
            query = conversation_query(text, unanswered_only, thumbs_down_only, kb, date_from, date_to, page)
        except ValueError as e:
            return kb_choices, gr.skip(), str(e), gr.skip(), gr.skip()
        found = self.conversations.search(query)
        return kb_choices, table_rows(found.rows), page_status(found, query), found.page, [r.id for r in found.rows]

    def transcript(self, conversation_id: str) -> str:
        """The conversation as an admin reads it: each turn with its flags, reasoning, no-answer mark and thumbs."""
        try:
            owner = self.conversations.owner_of(conversation_id)
            conversation = self.conversations.get(owner, conversation_id)
            turns = self.conversations.transcript(owner, conversation_id)
        except ConversationNotFoundError:
            return "This conversation no longer exists."
        feedback = self.conversations.feedback(conversation_id)
        about = [escape_markdown(conversation.kb), escape_markdown(owner), f"{conversation.updated_at:%Y-%m-%d %H:%M}"]
        parts = [f"### {escape_markdown(conversation.title)}", " · ".join(about)]
        parts += [turn_markdown(n, turn, feedback.get(n)) for n, turn in enumerate(turns, start=1)] or ["No turns yet."]
        return "\n\n".join(parts)


def _origin(should_refuse: bool) -> str:
    return "should refuse" if should_refuse else "good answer"


def _filter_panel() -> tuple[list[Any], gr.Button]:
    """The inputs of every listing (text, unanswered only, thumbs down only, knowledge base, from, to) and Search."""
    with gr.Row(equal_height=True):
        text = gr.Textbox(label="Search titles, questions and users", elem_id="conversations-search", scale=3)
        kb = gr.Dropdown(label="Knowledge base", choices=[ALL_KBS], value=ALL_KBS, elem_id="conversations-kb")
        search = gr.Button("Search", variant="primary", elem_id="conversations-search-button", scale=0)
    with gr.Row():
        unanswered = gr.Checkbox(label="Unanswered only (a turn handed off)", elem_id="conversations-unanswered")
        thumbs_down = gr.Checkbox(label="Thumbs down only", elem_id="conversations-thumbs-down")
        date_from = gr.Textbox(label="From (YYYY-MM-DD)", placeholder="2025-01-31", elem_id="conversations-from")
        date_to = gr.Textbox(label="To (YYYY-MM-DD)", placeholder="2025-12-31", elem_id="conversations-to")
    return [text, unanswered, thumbs_down, kb, date_from, date_to], search


def conversation_query(
    text: str | None,
    unanswered_only: bool,
    thumbs_down_only: bool,
    kb: str | None,
    date_from: str | None,
    date_to: str | None,
    page: int = 0,
) -> ConversationQuery:
    """The filters as typed into the tab; ValueError, with a message for the admin, on a date that is not one."""
    return ConversationQuery(
        text=(text or "").strip(),
        unanswered_only=bool(unanswered_only),
        thumbs_down_only=bool(thumbs_down_only),
        kb=None if kb in (None, "", ALL_KBS) else kb,
        date_from=day_from_text(date_from, "From"),
        date_to=day_from_text(date_to, "To"),
        page=max(0, page),
    )


def day_from_text(text: str | None, label: str) -> date | None:
    """A YYYY-MM-DD date typed in a filter box; None when empty; ValueError saying what is wrong."""
    if not (text or "").strip():
        return None
    try:
        return date.fromisoformat((text or "").strip())
    except ValueError:
        shown = escape_markdown((text or "")[:40])
        raise ValueError(f"**{label}** is not a date: “{shown}”. Write it as YYYY-MM-DD, e.g. 2025-01-31.") from None


def table_rows(rows: list[ConversationSummary]) -> list[list[Any]]:
    """Cells are shown as plain text by the table (datatype str), so user text goes in as it is."""
    return [
        [
            f"{r.updated_at:%Y-%m-%d %H:%M}",
            r.kb,
            r.owner,
            r.title,
            r.turns,
            r.answered,
            r.handed_off,
            r.thumbs_up,
            r.thumbs_down,
        ]
        for r in rows
    ]


def page_status(found: ConversationPage, query: ConversationQuery) -> str:
    if found.total == 0:
        unfiltered = ConversationQuery(page=query.page, page_size=query.page_size)
        return "No conversations yet." if query == unfiltered else "No conversations match these filters."
    noun = "conversation" if found.total == 1 else "conversations"
    return f"Page {found.page + 1} of {found.pages} · {found.total:,} {noun}"


def turn_markdown(number: int, turn: Turn, rating: tuple[str, str] | None) -> str:
    flags = [f"template v{turn.template_version}" if turn.template_version is not None else "", turn.mode]
    flags.append(LANGUAGES.get(turn.language, ""))
    flags.append("stopped by the customer" if turn.stopped else "")
    parts = [f"#### Turn {number} · {' · '.join(f for f in flags if f)}"]
    parts.append(f"**Customer:** {escape_markdown(turn.question)}")
    if turn.reasoning:
        parts.append(f"**Reasoning (hidden from the customer):** {escape_markdown(turn.reasoning)}")
    parts.append(f"**Assistant:** {render_answer(turn.answer, turn.sources)}")
    if not turn.answered:
        parts.append(f"⚠ **No answer** — handed off: {escape_markdown(turn.refusal or 'no-answer reply')}")
    if turn.dropped:
        parts.append(_dropped(turn.dropped))
    if rating is not None:
        parts.append(_rating(*rating))
    return "\n\n".join(parts)


def _rating(rating: str, reason: str) -> str:
    thumb = "👍" if rating == "up" else "👎"
    return f"{thumb} **Customer:** {escape_markdown(reason)}" if reason else f"{thumb} from the customer"


def _dropped(sentences: list[CheckedSentence]) -> str:
    """What the grounding check kept from the customer, and why."""
    lines = [f"- ~~{escape_markdown(s.text)}~~ — {escape_markdown(s.reason or '')}" for s in sentences]
    return "**Not shown to the customer (the documents do not support it):**\n" + "\n".join(lines)
