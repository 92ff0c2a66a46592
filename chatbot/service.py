"""ChatService: the one core API every front end calls (answer a question in a conversation, manage conversations)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, trim_messages

from chatbot.chain import build_answer_chain, build_condense_chain
from chatbot.errors import InvalidQuestionError, ModelUnavailableError, RagdeskError
from chatbot.history import Conversation, ConversationStore
from chatbot.prompts import SYSTEM_PROMPT, format_context
from chatbot.settings import ChatSettings
from knowledge.retriever import Source, reciprocal_rank_fusion
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


ChatEvent = SourcesFound | AnswerDelta | TurnSaved


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    sources: list[Source]


class ChatService:
    def __init__(
        self,
        llm: BaseChatModel,
        knowledge: KnowledgeService,
        conversations: ConversationStore,
        settings: ChatSettings,
        token_counter: TokenCounter,
        default_kb: str,
        prompt_token_limit: int = 8192 - 256,
    ) -> None:
        self.llm = llm
        self.knowledge = knowledge
        self.conversations = conversations
        self.settings = settings
        self._default_kb = default_kb
        self._token_counter = token_counter
        self._prompt_token_limit = prompt_token_limit
        self._condense = build_condense_chain(llm)
        self._answer = build_answer_chain(llm)

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
            sources = [Source(**s) for s in answer.additional_kwargs.get("sources", [])]
            turns.append(Turn(str(question.content), str(answer.content), sources))
        return turns

    # ---- answering -----------------------------------------------------------------------
    def stream_answer(self, owner: str, conversation_id: str, question: str) -> Iterator[ChatEvent]:
        """Retrieve, stream the answer, then save the whole turn; raises RagdeskError subclasses."""
        started = time.perf_counter()
        question = self._validated(question)
        conversation = self.conversations.get(owner, conversation_id)
        history = self.conversations.history(owner, conversation_id)
        memory = self._memory(history.messages)
        standalone = self._standalone_question(question, memory)
        documents = self._retrieve(conversation.kb, question, standalone)
        sources = [Source.from_document(d) for d in documents]
        yield SourcesFound(sources, standalone)
        parts: list[str] = []
        if not documents:
            parts.append(self.settings.no_answer_text)
            yield AnswerDelta(self.settings.no_answer_text)
        else:
            inputs = self._fitted_inputs(memory, documents, question)
            for delta in self._model_stream(inputs):
                parts.append(delta)
                yield AnswerDelta(delta)
        answer = "".join(parts).strip()
        latency = time.perf_counter() - started
        extra: dict[str, Any] = {
            "sources": [asdict(s) for s in sources],
            "standalone_question": standalone,
            "latency_s": round(latency, 3),
        }
        history.add_messages([HumanMessage(content=question), AIMessage(content=answer, additional_kwargs=extra)])
        yield TurnSaved(answer, sources, latency)

    def answer(self, owner: str, conversation_id: str, question: str) -> TurnSaved:
        """The non-streaming form of stream_answer."""
        events = list(self.stream_answer(owner, conversation_id, question))
        saved = events[-1]
        assert isinstance(saved, TurnSaved)
        return saved

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

    def _fitted_inputs(self, memory: list[BaseMessage], documents: list[Document], question: str) -> dict[str, Any]:
        """Fit the prompt to the model's context: drop the weakest chunks, then the oldest turns."""
        documents = list(documents)
        while True:
            context = format_context(documents)
            fixed = self._token_counter([SystemMessage(SYSTEM_PROMPT), HumanMessage(context + question)])
            if fixed <= self._prompt_token_limit or len(documents) <= 1:
                break
            documents.pop()
        budget = max(self._prompt_token_limit - fixed, 0)
        if memory and self._token_counter(memory) > budget:
            memory = self._memory(memory, budget)
        return {"history": memory, "context": context, "question": question}

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
        return rewritten

    def _retrieve(self, kb: str, question: str, standalone: str) -> list[Document]:
        """Search with the customer's own words and, for a follow-up, the rewritten question too, fused:
        a poor rewrite cannot lose what the customer actually asked."""
        retriever = self.knowledge.retriever(kb)
        if standalone == question:
            return retriever.invoke(question)
        rankings = [(retriever.invoke(question), 1.0), (retriever.invoke(standalone), 1.0)]
        return reciprocal_rank_fusion(
            rankings, self.knowledge.settings.retrieval.rrf_k, retriever.k or self.knowledge.settings.retrieval.k
        )

    def _model_stream(self, inputs: dict[str, Any]) -> Iterator[str]:
        try:
            yield from self._answer.stream(inputs)
        except RagdeskError:
            raise
        except Exception as e:
            logger.exception("the language model failed while answering")
            raise ModelUnavailableError("The assistant could not finish this answer. Please try again.") from e
