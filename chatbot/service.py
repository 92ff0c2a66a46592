"""ChatService: the one core API every front end calls (answer a question in a conversation, manage conversations)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, trim_messages
from langchain_core.runnables import Runnable

from chatbot.chain import build_answer_chain, build_condense_chain
from chatbot.errors import InvalidQuestionError, ModelUnavailableError, RagdeskError
from chatbot.history import Conversation, ConversationStore
from chatbot.settings import ChatSettings
from chatbot.template_store import TemplateStore
from chatbot.templates import (
    AnswerExtractor,
    AssistantTemplate,
    PromptBudget,
    answer_prompt,
    check_template,
    context_block,
    measure_budget,
)
from knowledge import metrics
from knowledge.keyword import tokenize
from knowledge.retriever import Source, best_relevance, reciprocal_rank_fusion
from knowledge.service import KnowledgeService

logger = logging.getLogger(__name__)

TokenCounter = Callable[[list[BaseMessage]], int]


@dataclass(frozen=True)
class SourcesFound:
    sources: list[Source]
    standalone_question: str


@dataclass(frozen=True)
class AnswerDelta:
    text: str


@dataclass(frozen=True)
class TurnSaved:
    answer: str
    sources: list[Source]
    latency_s: float
    answered: bool = True  # False: nothing relevant was found and the no-answer reply was given
    turn: int = 1  # which turn of the conversation this was (1 = the first)


ChatEvent = SourcesFound | AnswerDelta | TurnSaved


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    sources: list[Source]
    answered: bool = True
    reasoning: str = ""  # chain-of-thought, for admins only
    template_version: int | None = None


@dataclass(frozen=True)
class Trial:
    """A template tried on a question without saving anything (the Prompts tab's "try draft")."""

    answer: str
    reasoning: str
    sources: list[Source]
    answered: bool


@dataclass(frozen=True)
class PromptPreview:
    text: str  # exactly what the model reads (chat template applied when the model has one)
    prompt_tokens: int
    budget: PromptBudget
    sources: list[Source]


@dataclass
class _Outcome:
    answer: str = ""
    reasoning: str = ""
    answered: bool = True
    sources: list[Source] = field(default_factory=list)


class ChatService:
    def __init__(
        self,
        llm: BaseChatModel,
        knowledge: KnowledgeService,
        conversations: ConversationStore,
        templates: TemplateStore,
        settings: ChatSettings,
        token_counter: TokenCounter,
        default_kb: str,
        context_window: int = 8192,
    ) -> None:
        self.llm = llm
        self.knowledge = knowledge
        self.conversations = conversations
        self.templates = templates
        self.settings = settings
        self._default_kb = default_kb
        self._token_counter = token_counter
        self.context_window = context_window
        self._condense = build_condense_chain(llm)

    # ---- knowledge bases and conversations -------------------------------------------------
    @property
    def default_kb(self) -> str:
        """The configured default knowledge base, or the first one when the default was deleted or renamed."""
        names = [kb.name for kb in self.knowledge.knowledge_bases()]
        return self._default_kb if self._default_kb in names or not names else names[0]

    def knowledge_base_names(self) -> list[str]:
        return [kb.name for kb in self.knowledge.knowledge_bases()]

    def new_conversation(self, owner: str, kb: str | None = None) -> Conversation:
        return self.conversations.create(owner, self.knowledge.knowledge_base(kb or self.default_kb).name)

    def conversation(self, owner: str, conversation_id: str) -> Conversation:
        return self.conversations.get(owner, conversation_id)

    def list_conversations(self, owner: str) -> list[Conversation]:
        return self.conversations.list(owner)

    def delete_conversation(self, owner: str, conversation_id: str) -> None:
        self.conversations.delete(owner, conversation_id)

    def transcript(self, owner: str, conversation_id: str) -> list[Turn]:
        messages = self.conversations.history(owner, conversation_id).messages
        turns = []
        for question, answer in zip(messages[::2], messages[1::2], strict=False):
            extra = answer.additional_kwargs
            turns.append(
                Turn(
                    str(question.content),
                    str(answer.content),
                    [Source(**s) for s in extra.get("sources", [])],
                    bool(extra.get("answered", True)),
                    str(extra.get("reasoning", "")),
                    extra.get("template_version"),
                )
            )
        return turns

    # ---- answering -----------------------------------------------------------------------
    def stream_answer(self, owner: str, conversation_id: str, question: str) -> Iterator[ChatEvent]:
        """Retrieve, stream the answer, then save the whole turn; raises RagdeskError subclasses."""
        started = time.perf_counter()
        question = self._validated(question)
        conversation = self.conversations.get(owner, conversation_id)
        history = self.conversations.history(owner, conversation_id)
        earlier = history.messages
        memory = self._memory(earlier)
        version = self.templates.active(conversation.kb)
        standalone = self._standalone_question(question, memory)
        outcome = _Outcome()
        events = self._respond(conversation.kb, version.template, question, standalone, memory, outcome)
        yield from _measured(events, conversation.kb, version.version, outcome, started)
        latency = time.perf_counter() - started
        extra: dict[str, Any] = {
            "sources": [asdict(s) for s in outcome.sources],
            "standalone_question": standalone,
            "latency_s": round(latency, 3),
            "answered": outcome.answered,
            "template_version": version.version,
        }
        if outcome.reasoning:
            extra["reasoning"] = outcome.reasoning
        history.add_messages(
            [HumanMessage(content=question), AIMessage(content=outcome.answer, additional_kwargs=extra)]
        )
        yield TurnSaved(outcome.answer, outcome.sources, latency, outcome.answered, len(earlier) // 2 + 1)

    def _respond(
        self,
        kb: str,
        template: AssistantTemplate,
        question: str,
        standalone: str,
        memory: list[BaseMessage],
        outcome: _Outcome,
    ) -> Iterator[ChatEvent]:
        """Retrieval, the no-answer gate, then the model's streamed answer (with reasoning held back)."""
        documents = self._retrieve(kb, question, standalone, template.k)
        outcome.answered = bool(documents) and best_relevance(documents) >= template.relevance_threshold
        outcome.sources = [Source.from_document(d) for d in documents] if outcome.answered else []
        yield SourcesFound(outcome.sources, standalone)
        if not outcome.answered:  # nothing relevant: the template's reply, and no model call
            outcome.answer = template.no_answer_reply
            yield AnswerDelta(outcome.answer)
            return
        inputs = self._fitted_inputs(template, kb, memory, documents, question)
        chain = build_answer_chain(self.llm, template)
        if not template.chain_of_thought:
            parts = []
            for delta in self._model_stream(chain, inputs):
                parts.append(delta)
                yield AnswerDelta(delta)
            outcome.answer = "".join(parts).strip()
            return
        extractor = AnswerExtractor()
        for delta in self._model_stream(chain, inputs):
            visible = extractor.feed(delta)
            if visible:
                yield AnswerDelta(visible)
        answer, outcome.reasoning = extractor.finish()
        outcome.answer = answer or template.no_answer_reply
        released = extractor.released
        if outcome.answer.startswith(released.strip()) and len(outcome.answer) > len(released.strip()):
            yield AnswerDelta(outcome.answer[len(released.strip()) :])

    def stream_reply(self, kb: str, question: str, history: list[BaseMessage]) -> Iterator[ChatEvent]:
        """Answer with a history the caller keeps (the OpenAI-compatible API); nothing is saved."""
        started = time.perf_counter()
        question = self._validated(question)
        version = self.templates.active(self.knowledge.knowledge_base(kb).name)
        memory = self._memory(history)
        standalone = self._standalone_question(question, memory)
        outcome = _Outcome()
        events = self._respond(kb, version.template, question, standalone, memory, outcome)
        yield from _measured(events, kb, version.version, outcome, started)
        latency = time.perf_counter() - started
        turn = sum(1 for m in history if m.type == "human") + 1
        yield TurnSaved(outcome.answer, outcome.sources, latency, outcome.answered, turn)

    def feedback(self, owner: str, conversation_id: str, turn: int, rating: str, reason: str = "") -> None:
        self.conversations.add_feedback(owner, conversation_id, turn, rating, reason)
        metrics.FEEDBACK.labels(rating=rating).inc()

    def try_template(self, kb: str, template: AssistantTemplate, question: str) -> Trial:
        """Answer one question with a (draft) template, saving nothing."""
        question = self._validated(question)
        self.knowledge.knowledge_base(kb)
        outcome = _Outcome()
        for _ in self._respond(kb, template, question, question, [], outcome):
            pass
        return Trial(outcome.answer, outcome.reasoning, outcome.sources, outcome.answered)

    def preview_prompt(self, kb: str, template: AssistantTemplate, question: str) -> PromptPreview:
        """The fully rendered prompt for a sample question, with real retrieved context."""
        question = self._validated(question)
        check_template(template)
        documents = self._retrieve(kb, question, question, template.k)
        inputs = self._fitted_inputs(template, kb, [], documents, question)
        messages = answer_prompt(template).format_messages(**inputs)
        render = getattr(self.llm, "render_prompt", None)
        text = render(messages) if render else "\n\n".join(f"[{m.type}]\n{m.content}" for m in messages)
        return PromptPreview(
            text, self._token_counter(messages), self.budget(template), [Source.from_document(d) for d in documents]
        )

    def budget(self, template: AssistantTemplate) -> PromptBudget:
        return measure_budget(
            template,
            self._token_counter,
            self.knowledge.settings.chunking.chunk_size,
            self.settings.history_tokens,
            self.context_window,
        )

    def answer(self, owner: str, conversation_id: str, question: str) -> TurnSaved:
        """The non-streaming form of stream_answer."""
        events = list(self.stream_answer(owner, conversation_id, question))
        saved = events[-1]
        assert isinstance(saved, TurnSaved)
        return saved

    def validate_question(self, question: str) -> str:
        """The question, stripped; InvalidQuestionError when it is empty or too long."""
        return self._validated(question)

    def _validated(self, question: str) -> str:
        question = question.strip()
        if not question:
            raise InvalidQuestionError("Please type a question.")
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestionError(
                f"Your message is too long ({len(question):,} characters; the limit is "
                f"{self.settings.max_question_chars:,}). Please shorten it."
            )
        return question

    def _memory(self, messages: list[BaseMessage], budget: int | None = None) -> list[BaseMessage]:
        """Buffer memory: the newest turns that fit the token budget, without stored extras."""
        plain = [type(m)(content=m.content) for m in messages]
        budget = self.settings.history_tokens if budget is None else budget
        if budget <= 0 or not plain:
            return []
        return trim_messages(
            plain,
            max_tokens=budget,
            token_counter=self._token_counter,
            strategy="last",
            start_on="human",
            end_on="ai",
        )

    def _fitted_inputs(
        self,
        template: AssistantTemplate,
        kb: str,
        memory: list[BaseMessage],
        documents: list[Document],
        question: str,
    ) -> dict[str, Any]:
        """Fit the prompt to the model's context: drop the weakest chunks, then the oldest turns."""
        prompt = answer_prompt(template)
        limit = self.context_window - template.max_new_tokens
        documents = list(documents)
        while True:
            inputs = {"context": context_block(documents), "kb": kb, "question": question, "history": []}
            fixed = self._token_counter(prompt.format_messages(**inputs))
            if fixed <= limit or len(documents) <= 1:
                break
            documents.pop()
        budget = max(limit - fixed, 0)
        if memory and self._token_counter(memory) > budget:
            memory = self._memory(memory, budget)
        return {**inputs, "history": memory}

    def _standalone_question(self, question: str, memory: list[BaseMessage]) -> str:
        if not memory:
            return question
        try:
            rewritten = str(self._condense.invoke({"history": memory, "question": question})).strip()
        except Exception as e:
            raise ModelUnavailableError("The assistant is unavailable right now. Please try again shortly.") from e
        rewritten = rewritten.splitlines()[0].strip() if rewritten else ""
        if not rewritten or len(rewritten) > 3 * len(question) + 300:
            previous = next((str(m.content) for m in reversed(memory) if m.type == "human"), "")
            return f"{previous} {question}".strip()
        asked = set(tokenize(question))
        if asked and not asked & set(tokenize(rewritten)):
            return question  # a rewrite that dropped every word the customer used answers another question
        return rewritten

    def _retrieve(self, kb: str, question: str, standalone: str, k: int) -> list[Document]:
        """Search with the customer's own words and, for a follow-up, the rewritten question too, fused:
        a poor rewrite cannot lose what the customer actually asked."""
        retriever = self.knowledge.retriever(kb, k=k)
        if standalone == question:
            return retriever.invoke(question)
        rankings = [(retriever.invoke(question), 1.0), (retriever.invoke(standalone), 1.0)]
        return reciprocal_rank_fusion(rankings, self.knowledge.settings.retrieval.rrf_k, k)

    def _model_stream(self, chain: Runnable, inputs: dict[str, Any]) -> Iterator[str]:
        try:
            for chunk in chain.stream(inputs):
                if chunk.text:
                    yield chunk.text
        except RagdeskError:
            raise
        except Exception as e:
            logger.exception("the language model failed while answering")
            raise ModelUnavailableError("The assistant could not finish this answer. Please try again.") from e


def _measured(
    events: Iterator[ChatEvent], kb: str, template_version: int, outcome: _Outcome, started: float
) -> Iterator[ChatEvent]:
    """Pass a turn's events through, then record its metrics and one INFO line about it (never its text)."""
    first_delta_at, deltas = None, 0
    for event in events:
        if isinstance(event, AnswerDelta):
            first_delta_at = first_delta_at or time.perf_counter()
            deltas += 1
        yield event
    metrics.CHAT_TURNS.labels(kb=kb, outcome="answered" if outcome.answered else "no_answer").inc()
    metrics.RETRIEVAL_HITS.observe(len(outcome.sources))
    logger.info(
        "chat turn kb=%s answered=%s sources=%d template=v%s latency_s=%.2f",
        kb,
        outcome.answered,
        len(outcome.sources),
        template_version,
        time.perf_counter() - started,
    )
    if not outcome.answered:
        metrics.NO_ANSWER.labels(kb=kb).inc()
    elif first_delta_at is not None:
        metrics.TIME_TO_FIRST_TOKEN.observe(first_delta_at - started)
        streaming_s = time.perf_counter() - first_delta_at
        if deltas > 1 and streaming_s > 0:
            metrics.TOKENS_PER_SECOND.observe((deltas - 1) / streaming_s)
