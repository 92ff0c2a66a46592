"""ChatService: customers' conversations (start, list, read, delete, rate) and asking in them through the one turn
pipeline, either in a stored conversation or with a history the caller keeps."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator

from langchain_core.messages import BaseMessage

from chatbot.conversation.admission import AnswerQueue
from chatbot.conversation.history import Conversation, ConversationStore, PassingHistory
from chatbot.conversation.messages import busy_reply
from chatbot.conversation.pipeline import TurnPipeline, TurnRequest
from chatbot.conversation.template_store import TemplateStore
from chatbot.conversation.turns import Turn, TurnEvent, TurnResult
from chatbot.settings import QueueSettings
from knowledge import metrics
from knowledge.service import KnowledgeService


class ChatService:
    def __init__(
        self,
        pipeline: TurnPipeline,
        knowledge: KnowledgeService,
        conversations: ConversationStore,
        templates: TemplateStore,
        default_kb: str,
        queue: AnswerQueue | None = None,
    ) -> None:
        self._queue = queue or AnswerQueue(QueueSettings())
        self._pipeline = pipeline
        self._knowledge = knowledge
        self._conversations = conversations
        self._templates = templates
        self._default_kb = default_kb

    # ---- knowledge bases and conversations -------------------------------------------------
    @property
    def default_kb(self) -> str:
        """The configured default knowledge base, or the first one when the default was deleted or renamed."""
        names = self.knowledge_base_names()
        return self._default_kb if self._default_kb in names or not names else names[0]

    def knowledge_base_names(self) -> list[str]:
        return [kb.name for kb in self._knowledge.knowledge_bases()]

    def new_conversation(self, owner: str, kb: str | None = None) -> Conversation:
        return self._conversations.create(owner, self._knowledge.knowledge_base(kb or self.default_kb).name)

    def conversation(self, owner: str, conversation_id: str) -> Conversation:
        return self._conversations.get(owner, conversation_id)

    def list_conversations(self, owner: str) -> list[Conversation]:
        return self._conversations.list(owner)

    def delete_conversation(self, owner: str, conversation_id: str) -> None:
        self._conversations.delete(owner, conversation_id)

    def transcript(self, owner: str, conversation_id: str) -> list[Turn]:
        return self._conversations.transcript(owner, conversation_id)

    def feedback(self, owner: str, conversation_id: str, turn: int, rating: str, reason: str = "") -> None:
        self._conversations.add_feedback(owner, conversation_id, turn, rating, reason)
        metrics.FEEDBACK.labels(rating=rating).inc()

    # ---- asking --------------------------------------------------------------------------
    def validate_question(self, question: str) -> str:
        """The question, stripped; InvalidQuestionError when it is empty or too long."""
        return self._pipeline.validate(question)

    def stream_answer(
        self, owner: str, conversation_id: str, question: str, stop: threading.Event | None = None
    ) -> Generator[TurnEvent, None, None]:
        """Ask in a stored conversation: the turn is saved to it when the answer is complete, or when `stop` is set
        (the customer's Stop: what was written so far). The question is checked, and titles a new conversation,
        before the first event (InvalidQuestionError is raised here)."""
        question = self._pipeline.validate(question)
        conversation = self._conversations.get(owner, conversation_id)
        version = self._templates.active(conversation.kb)
        history = self._conversations.history(owner, conversation_id)
        request = TurnRequest(conversation.kb, question, history, version.template, version.version, stop)
        events = self._queue.admit(self._pipeline.run(request), busy_reply(question), conversation_id)
        self._conversations.title_untitled(owner, conversation_id, question)  # let in: the question titles it
        return events

    def stream_reply(
        self,
        kb: str,
        question: str,
        history: list[BaseMessage],
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generator[TurnEvent, None, None]:
        """Ask with a history the caller keeps (the OpenAI-compatible API); nothing is stored. The caller may ask
        for a shorter answer than the template's, and for another temperature. KnowledgeBaseNotFoundError is raised
        here, before any event."""
        kb = self._knowledge.knowledge_base(kb).name
        version = self._templates.active(kb)
        template = version.template
        if max_new_tokens is not None:
            template = template.model_copy(update={"max_new_tokens": min(max_new_tokens, template.max_new_tokens)})
        if temperature is not None:
            template = template.model_copy(update={"temperature": temperature})
        request = TurnRequest(kb, question, PassingHistory(history), template, version.version)
        return self._queue.admit(self._pipeline.run(request), busy_reply(question))

    def interrupt_answers(self) -> None:
        """Shutting down: answers being written stop now, nothing half of them is saved, no new one starts, and the
        customers still in line are told to come back."""
        self._queue.close()
        self._pipeline.interrupt_answers()

    def close_line(self) -> None:
        """Shutting down: customers waiting in line are told to come back; answers being written go on."""
        self._queue.close()

    def queue_state(self) -> dict[str, float | int | bool]:
        """How busy answering is: answering now, waiting in line, whether the line is full."""
        return self._queue.state()

    def answer(self, owner: str, conversation_id: str, question: str) -> TurnResult:
        """The non-streaming form of stream_answer."""
        return final(self.stream_answer(owner, conversation_id, question))


def final(events: Iterator[TurnEvent]) -> TurnResult:
    """Run a turn to its end and return its result (the events before it are dropped)."""
    for event in events:
        if isinstance(event, TurnResult):
            return event
    raise RuntimeError("a turn ended without a result")  # the pipeline always yields one, or raises
