"""The Insights tab: knowledge gaps (what customers asked that the knowledge base could not answer, grouped into
topics) with the FAQ entry an admin writes for one, the support metrics, and the knowledge bases' test sets."""

from __future__ import annotations

from typing import Any

import gradio as gr

from chatbot.insights.knowledge_gaps import Topic
from chatbot.insights.service import InsightsService
from chatbot.ui.conversations_tab import ALL_KBS
from chatbot.ui.metrics_panel import MetricsPanel
from chatbot.ui.rendering import admin_name, escape_markdown
from chatbot.ui.test_set_panel import TestSetPanel
from knowledge.errors import RagdeskError

TOPIC_COLUMNS = [
    "Asked",
    "Representative question",
    "Other wordings",
    "Why",
    "First seen",
    "Last seen",
    "Knowledge base",
]
NO_GAPS = "**No knowledge gaps yet:** no question was handed off, refused or thumbed down{kb}."
FAQ_COLUMNS = ["#", "Status", "Knowledge base", "Question", "Answer", "By", "Document"]


class InsightsTab:
    def __init__(self, insights: InsightsService, kb_names: Any) -> None:
        self.insights = insights
        self.kb_names = kb_names  # () -> the knowledge bases' names
        self.metrics = MetricsPanel(insights.metrics, kb_names)
        self.test_sets = TestSetPanel(insights.sets, kb_names)

    def render(self, tab: gr.Tab) -> None:
        with gr.Accordion("Knowledge gaps: what the knowledge base could not answer", open=True):
            gap_inputs, gap_outputs = self._gaps()
        with gr.Accordion("Support metrics", open=True):
            metric_inputs, metric_outputs = self.metrics.render()
        with gr.Accordion("Test sets (the evaluation gate answers them before a template goes live)", open=False):
            self.test_sets.render(tab)
        tab.select(self.metrics.show, metric_inputs, metric_outputs)
        tab.select(self._on_refresh, gap_inputs, gap_outputs)

    def _gaps(self) -> tuple[list[Any], list[Any]]:
        with gr.Row(equal_height=True):
            kb = gr.Dropdown(label="Knowledge base", choices=[ALL_KBS], value=ALL_KBS, elem_id="gaps-kb")
            refresh = gr.Button("Refresh", elem_id="gaps-refresh", scale=0)
        status = gr.Markdown(elem_id="gaps-status")
        table = gr.Dataframe(headers=TOPIC_COLUMNS, interactive=False, wrap=True, elem_id="gaps-table")
        keys = gr.State([])
        with gr.Group(visible=False, elem_id="gap-editor") as editor:
            topic = gr.Markdown(elem_id="gap-topic")
            answer = gr.Textbox(label="Answer for these customers", lines=4, elem_id="gap-answer")
            with gr.Row():
                draft = gr.Button("Draft it with the model", elem_id="gap-draft")
                save = gr.Button("Save as draft", elem_id="gap-save")
                approve = gr.Button("Approve: add to the knowledge base", variant="primary", elem_id="gap-approve")
        message = gr.Markdown(elem_id="gap-message")
        entries = gr.Dataframe(
            headers=FAQ_COLUMNS, interactive=False, wrap=True, label="FAQ entries", elem_id="faq-table"
        )
        key, entry = gr.State(""), gr.State(0)
        listing = [kb, status, table, keys, entries, editor]
        refresh.click(self._on_refresh, [kb], listing)
        kb.input(self._on_refresh, [kb], listing)
        table.select(self._on_topic, [keys], [editor, topic, answer, message, key, entry])
        draft.click(self._on_draft, [key], [answer, message, entry])
        save.click(self._on_save, [key, entry, answer], [message, entry, entries])
        approve.click(self._on_approve, [kb, key, entry, answer], [message, entry, *listing])
        return [kb], listing

    # ---- handlers ------------------------------------------------------------------------
    def _on_refresh(self, kb: str | None) -> tuple[Any, ...]:
        chosen = None if kb in (None, "", ALL_KBS) else kb
        topics = self.insights.gaps.topics(chosen)
        choices = gr.Dropdown(choices=[ALL_KBS, *self.kb_names()], value=kb or ALL_KBS)
        where = f" in '{escape_markdown(chosen)}'" if chosen else ""
        asked = sum(t.size for t in topics)
        status = f"{_count(len(topics), 'topic')} from {_count(asked, 'unanswered question')}{where}."
        status = status if topics else NO_GAPS.format(kb=where)
        rows = [topic_row(t) for t in topics]
        return choices, status, rows, [t.key for t in topics], self._entries(chosen), gr.Group(visible=False)

    def _entries(self, kb: str | None) -> list[list[Any]]:
        return [
            [e.id, e.status, e.kb, e.questions[0], e.answer, e.approved_by or e.written_by, e.document or ""]
            for e in self.insights.faq.entries(kb)
        ]

    def _on_topic(self, keys: list[str], event: gr.SelectData) -> tuple[Any, ...]:
        row = event.index[0] if isinstance(event.index, list | tuple) else event.index
        if not isinstance(row, int) or not 0 <= row < len(keys):
            return gr.skip(), gr.skip(), gr.skip(), "Pick a topic in the table.", gr.skip(), gr.skip()
        try:
            topic = self.insights.topic(keys[row])
        except RagdeskError as e:
            return gr.Group(visible=True), "", "", str(e), "", 0
        return gr.Group(visible=True), topic_markdown(topic), "", "", topic.key, 0

    def _on_draft(self, key: str) -> tuple[Any, ...]:
        try:
            entry = self.insights.draft(key)
        except RagdeskError as e:
            return gr.skip(), str(e), gr.skip()
        note = f"Draft #{entry.id}, written by the model: **check and correct it before approving**; nothing is live."
        return entry.answer, note, entry.id

    def _on_save(self, key: str, entry_id: int, answer: str, request: gr.Request) -> tuple[Any, ...]:
        try:
            if entry_id:
                entry = self.insights.faq.update_draft(entry_id, answer)
            else:
                entry = self.insights.draft(key, answer, by=admin_name(request))
        except RagdeskError as e:
            return str(e), gr.skip(), gr.skip()
        return f"Saved as draft #{entry.id}; nothing is live until it is approved.", entry.id, self._entries(None)

    def _on_approve(self, kb: str | None, key: str, entry_id: int, answer: str, request: gr.Request) -> tuple[Any, ...]:
        try:
            if not entry_id:
                entry_id = self.insights.draft(key, answer, by=admin_name(request)).id
            entry = self.insights.approve(entry_id, answer, admin_name(request))
        except RagdeskError as e:
            return str(e), entry_id or gr.skip(), *([gr.skip()] * 5), gr.Group(visible=True)
        done = (
            f"Approved: **{escape_markdown(entry.document or '')}** is in '{escape_markdown(entry.kb)}' (see the "
            "Knowledge tab) and the question joined its test set. The next customer asking this is answered from it."
        )
        return done, 0, *self._on_refresh(kb)


def topic_row(topic: Topic) -> list[Any]:
    why = ", ".join(f"{reason} ×{n}" for reason, n in topic.reasons.most_common())
    others = " · ".join(topic.examples[1:])
    return [
        topic.size,
        topic.representative,
        others,
        why,
        f"{topic.first_seen:%Y-%m-%d %H:%M}",
        f"{topic.last_seen:%Y-%m-%d %H:%M}",
        topic.kb,
    ]


def topic_markdown(topic: Topic) -> str:
    asked = "\n".join(f"- {escape_markdown(q)}" for q in topic.examples)
    return (
        f"#### Asked {topic.size} times in '{escape_markdown(topic.kb)}', last on {topic.last_seen:%Y-%m-%d}\n"
        f"{asked}\n\nWrite the answer (or let the model draft one and correct it). Approving adds it to the "
        "knowledge base as an FAQ document, removable in the Knowledge tab like any other."
    )


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"
