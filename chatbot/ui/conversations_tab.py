"""The Conversations tab (admin): recent conversations of every customer, with what customers never see:
the chain-of-thought reasoning, unanswered turns and the template version that answered."""

from __future__ import annotations

from typing import Any

import gradio as gr

from chatbot.conversation.history import ConversationStore
from chatbot.conversation.turns import CheckedSentence
from chatbot.ui.rendering import escape_markdown, render_answer


class ConversationsTab:
    def __init__(self, conversations: ConversationStore) -> None:
        self.conversations = conversations

    def render(self, tab: gr.Tab) -> None:
        conversation = gr.Dropdown(label="Recent conversations", choices=[], elem_id="admin-conversation")
        transcript = gr.Markdown(elem_id="admin-transcript")
        tab.select(self._on_show, None, [conversation, transcript])
        conversation.input(self._on_open, [conversation], [transcript])

    def _on_show(self) -> tuple[Any, ...]:
        recent = self.conversations.recent()
        choices = [(f"{c.updated_at:%Y-%m-%d %H:%M} · {c.kb} · {c.title}", c.id) for c in recent]
        return gr.Dropdown(choices=choices, value=None), ""

    def _on_open(self, conversation_id: str | None) -> str:
        if not conversation_id:
            return ""
        owner = self.conversations.owner_of(conversation_id)
        parts = []
        for number, turn in enumerate(self.conversations.transcript(owner, conversation_id), start=1):
            flags = [f"template v{turn.template_version}" if turn.template_version is not None else ""]
            flags.append(turn.mode if turn.answered else f"handed off: {turn.refusal or 'no-answer reply'}")
            flags.append({"zh": "Chinese", "other": "other language"}.get(turn.language, ""))
            parts.append(f"#### Turn {number} · {' · '.join(f for f in flags if f)}")
            parts.append(f"**Customer:** {escape_markdown(turn.question)}")
            if turn.reasoning:
                parts.append(f"**Reasoning (hidden from the customer):** {escape_markdown(turn.reasoning)}")
            parts.append(f"**Assistant:** {render_answer(turn.answer, turn.sources)}")
            if turn.dropped:
                parts.append(_dropped(turn.dropped))
        return "\n\n".join(parts) or "No turns yet."


def _dropped(sentences: list[CheckedSentence]) -> str:
    """What the grounding check kept from the customer, and why."""
    lines = [f"- ~~{escape_markdown(s.text)}~~ — {escape_markdown(s.reason or '')}" for s in sentences]
    return "**Not shown to the customer (the documents do not support it):**\n" + "\n".join(lines)
