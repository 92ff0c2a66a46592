"""PromptFitter: a turn's prompt fitted to what the model can read (buffer memory trimmed, weakest chunks dropped)."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, trim_messages

from chatbot.conversation.templates import (
    AssistantTemplate,
    PromptBudget,
    answer_prompt,
    context_block,
    measure_budget,
)
from chatbot.llm.factory import TokenCounter

_MARKERS = re.compile(r" ?\[\d+\]")


class PromptFitter:
    def __init__(self, count_tokens: TokenCounter, context_window: int, history_tokens: int, chunk_tokens: int) -> None:
        self.count_tokens = count_tokens
        self.context_window = context_window
        self._history_tokens = history_tokens
        self._chunk_tokens = chunk_tokens

    def memory(self, messages: list[BaseMessage], budget: int | None = None) -> list[BaseMessage]:
        """Buffer memory: the newest turns that fit the token budget, without stored extras."""
        plain = [type(m)(content=_MARKERS.sub("", str(m.content))) for m in messages]  # [n]: last turn's sources
        budget = self._history_tokens if budget is None else budget
        if budget <= 0 or not plain:
            return []
        return trim_messages(
            plain,
            max_tokens=budget,
            token_counter=self.count_tokens,
            strategy="last",
            start_on="human",
            end_on="ai",
        )

    def inputs(
        self,
        template: AssistantTemplate,
        kb: str,
        memory: list[BaseMessage],
        documents: list[Document],
        question: str,
    ) -> dict[str, Any]:
        """The answer prompt's inputs: the weakest chunks dropped, then the oldest turns, until it fits."""
        prompt = answer_prompt(template)
        limit = self.context_window - template.max_new_tokens
        documents = list(documents)
        while True:
            inputs = {"context": context_block(documents), "kb": kb, "question": question, "history": []}
            fixed = self.count_tokens(prompt.format_messages(**inputs))
            if fixed <= limit or len(documents) <= 1:
                break
            documents.pop()
        budget = max(limit - fixed, 0)
        if memory and self.count_tokens(memory) > budget:
            memory = self.memory(memory, budget)
        return {**inputs, "history": memory}

    def budget(self, template: AssistantTemplate) -> PromptBudget:
        """How a template spends the context window, with full chunks and a full memory."""
        return measure_budget(
            template, self.count_tokens, self._chunk_tokens, self._history_tokens, self.context_window
        )
