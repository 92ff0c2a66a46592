"""The conversation chain as LCEL runnables: condense a follow-up, then answer from retrieved context."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable

from chatbot.conversation.prompts import CONDENSE_PROMPT
from chatbot.conversation.templates import AssistantTemplate, answer_prompt


def build_condense_chain(llm: BaseChatModel) -> Runnable:
    """{history, question} → a standalone question (one line)."""
    rewrite = llm.bind(stop=["\n"], temperature=0.0, max_completion_tokens=48)  # a rewrite, not a creative one
    return CONDENSE_PROMPT | rewrite | StrOutputParser()


def build_answer_chain(llm: BaseChatModel, template: AssistantTemplate) -> Runnable:
    """{history, context, kb, question} → answer message chunks, with the template's generation settings.

    No output parser at the end: when a customer leaves mid-answer the stream is closed, and LCEL's parser
    step would first drain its input, i.e. run the model to the end of an answer nobody reads."""
    bound = llm.bind(temperature=template.temperature, max_completion_tokens=template.max_new_tokens)
    return answer_prompt(template) | bound
