"""A first draft of an FAQ answer for a knowledge gap, written by the configured model from the topic's questions
and whatever the knowledge base already says near them. It is only ever shown to the admin, marked as a draft:
the admin corrects it (a small model's draft needs it) before approving."""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser

from chatbot.insights.knowledge_gaps import Topic
from chatbot.llm.factory import LanguageModel
from knowledge.service import KnowledgeService

DRAFT_TOKENS = 160
CONTEXT_PASSAGES = 2
INSTRUCTIONS = (
    "You write entries for a customer-service FAQ. Write a short, polite answer (two to four sentences) to the "
    "customer question below, which the documentation does not answer yet. Where you do not know a fact "
    "(a time, a price, a policy), write a placeholder in square brackets, such as [number of days], for the "
    "support team to fill in. Do not invent facts."
)


def draft_answer(model: LanguageModel, knowledge: KnowledgeService, topic: Topic) -> str:
    """The model's draft for the topic (may be empty when the model writes nothing useful)."""
    nearby = knowledge.search(topic.kb, [topic.representative], CONTEXT_PASSAGES)
    context = "\n\n".join(d.page_content for d in nearby)
    asked = "\n".join(f"- {q}" for q in topic.examples)
    prompt = [
        SystemMessage(INSTRUCTIONS + (f"\n\nWhat the documentation says nearby:\n{context}" if context else "")),
        HumanMessage(f"Customers asked:\n{asked}\n\nWrite the FAQ answer."),
    ]
    writer = model.chat.bind(temperature=0.0, max_completion_tokens=DRAFT_TOKENS) | StrOutputParser()
    return writer.invoke(prompt).strip()
