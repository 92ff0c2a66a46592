"""The conversation chain as LCEL runnables: condense a follow-up, then answer from retrieved context."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from chatbot.prompts import ANSWER_PROMPT, CONDENSE_PROMPT


def build_condense_chain(llm: BaseChatModel) -> Runnable:
    """{history, question} → a standalone question (one line)."""
    return CONDENSE_PROMPT | llm.bind(stop=["\n"], max_completion_tokens=48) | StrOutputParser()


def build_answer_chain(llm: BaseChatModel) -> Runnable:
    """{history, context, question} → answer text (streamable)."""
    return ANSWER_PROMPT | llm | StrOutputParser()
