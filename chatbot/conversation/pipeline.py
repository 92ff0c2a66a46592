"""TurnPipeline: the one chat turn that every front end runs, as a stream of events.

question → buffer memory → condense a follow-up → retrieve → no-answer gate → prompt → generate (streamed,
reasoning held back) → save the turn whole → TurnResult. The chat page, the REST API and the OpenAI-compatible
API differ only in the history they hand in (a stored conversation, or the caller's own messages) and in how they
render the events.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from chatbot.conversation.chain import build_answer_chain, build_condense_chain
from chatbot.conversation.chain_of_thought import AnswerExtractor
from chatbot.conversation.checked_answer import CheckedAnswer, checked, unchecked
from chatbot.conversation.grounding import GroundingCheck
from chatbot.conversation.language import CHINESE, detect_language
from chatbot.conversation.messages import Replies, replies_for
from chatbot.conversation.plain_text import unreadable
from chatbot.conversation.prompt_fitting import PromptFitter
from chatbot.conversation.quoting import QuotePicker, quoted_answer
from chatbot.conversation.templates import AssistantTemplate
from chatbot.conversation.turns import (
    NO_ANSWER_WRITTEN,
    NO_RELEVANT_PASSAGE,
    UNSUPPORTED_ANSWER,
    AnswerDelta,
    SourcesFound,
    Timings,
    TurnEvent,
    TurnResult,
)
from chatbot.errors import (
    AnswerStoppedError,
    InvalidQuestionError,
    ModelUnavailableError,
    RagdeskError,
    ServerStoppingError,
)
from chatbot.llm.factory import LanguageModel
from knowledge import metrics
from knowledge.errors import VectorStoreUnavailableError
from knowledge.keyword import tokenize
from knowledge.retriever import Source, best_relevance
from knowledge.service import KnowledgeService

logger = logging.getLogger(__name__)
SEARCH_DOWN = (
    "Our document search is not answering right now, so your question could not be looked up. Please try again "
    "in a minute."
)
RESTARTING = "The assistant is restarting and could not finish this answer. Please ask again in a moment."

Answer = tuple[CheckedAnswer, str]  # (what the customer was shown, the reasoning held back)


@dataclass(frozen=True)
class TurnRequest:
    kb: str
    question: str
    history: BaseChatMessageHistory  # earlier turns are read from it; this turn is added to it at the end
    template: AssistantTemplate
    template_version: int | None = None
    stop: threading.Event | None = None  # set when the customer presses Stop: the answer ends where it is


class TurnPipeline:
    def __init__(
        self,
        model: LanguageModel,
        knowledge: KnowledgeService,
        fitter: PromptFitter,
        grounding: GroundingCheck,
        quotes: QuotePicker,
        max_question_chars: int,
        languages: Sequence[str] = ("en",),
    ) -> None:
        self._model = model
        self._knowledge = knowledge
        self._fitter = fitter
        self._grounding = grounding
        self._quotes = quotes
        self._stopping = threading.Event()  # set when the server shuts down: answers being written end
        self._languages = frozenset(languages)  # the languages the model writes answers in
        self._max_question_chars = max_question_chars
        self._condense = build_condense_chain(model.chat)

    def validate(self, question: str) -> str:
        """The question, stripped; InvalidQuestionError when it is empty or too long."""
        question = question.strip()
        if not question:
            raise InvalidQuestionError("Please type a question.")
        problem = unreadable(question)
        if problem:
            raise InvalidQuestionError(f"Your message contains {problem}. Please retype it.")
        if len(question) > self._max_question_chars:
            raise InvalidQuestionError(
                f"Your message is too long ({len(question):,} characters; the limit is "
                f"{self._max_question_chars:,}). Please shorten it."
            )
        return question

    def _relevant(self, documents: list[Document], template: AssistantTemplate, language: str) -> bool:
        """Whether a passage is relevant enough to answer from; with none, whether the search really ran (a
        vector store down is not "the documents do not say")."""
        if documents and best_relevance(documents) >= _relevance_floor(template, language):
            return True
        if not self._knowledge.vector_store_answers():
            raise VectorStoreUnavailableError(SEARCH_DOWN)
        return False

    def run(self, request: TurnRequest) -> Generator[TurnEvent, None, None]:
        """Answer one question; raises RagdeskError subclasses (nothing is saved then)."""
        clock = _Clock()
        question = self.validate(request.question)
        language = detect_language(question)
        template = self._template_for(request.template, language)
        replies = replies_for(template, language)
        earlier = request.history.messages
        memory = self._fitter.memory(earlier)
        standalone = self._standalone_question(question, memory, language, template.grounding_policy != "quote")
        documents = self._knowledge.search(request.kb, _distinct(question, standalone), template.k)
        answered = self._relevant(documents, template, language)
        sources = [Source.from_document(d) for d in documents] if answered else []
        retrieval_s = clock.elapsed()
        yield SourcesFound(sources, standalone)
        reasoning, answer = "", CheckedAnswer(gap=NO_RELEVANT_PASSAGE)
        if answered:
            inputs = self._fitter.inputs(template, request.kb, memory, documents, question)
            turn = _Answering(template, inputs, documents, question, _leads(replies, sources), request.stop)
            answer, reasoning = yield from clock.timed(self._closed(self._answer(turn), replies.closing, request.stop))
        refusal = _refusal(answer)
        if refusal:  # nothing relevant, or nothing fit to show: the handoff reply, in the customer's language
            yield AnswerDelta(replies.no_answer)
        result = TurnResult(
            question=question,
            answer=answer.shown or replies.no_answer,
            sources=sources,
            turn=sum(1 for m in earlier if m.type == "human") + 1,
            timings=Timings(retrieval_s, clock.first_delta_s, clock.elapsed()),
            refusal=refusal,
            reasoning=reasoning,
            standalone_question=standalone,
            template_version=request.template_version,
            grounding_policy=template.grounding_policy if answered else "off",
            checked=tuple(answer.verdicts),
            language=language,
            stopped=answer.cut_short,
        )
        self._save(request.history, result)
        _record(request.kb, result, clock.deltas)
        yield result

    def _template_for(self, template: AssistantTemplate, language: str) -> AssistantTemplate:
        """The template, set to quote when the model does not write answers in the customer's language."""
        if language in self._languages:
            return template
        return template.model_copy(update={"grounding_policy": "quote", "chain_of_thought": False})

    @staticmethod
    def _save(history: BaseChatMessageHistory, result: TurnResult) -> None:
        answer = AIMessage(content=result.answer, additional_kwargs=result.stored_extras())
        history.add_messages([HumanMessage(content=result.question), answer])

    def _standalone_question(self, question: str, memory: list[BaseMessage], language: str, model_writes: bool) -> str:
        """A follow-up as a question of its own, for retrieval: rewritten by the model, or (when the model would
        rewrite a question it cannot read, or writes nothing at all under the quote policy) the previous question
        and this one together."""
        if not memory:
            return question
        if language not in self._languages or not model_writes:
            previous = next((str(m.content) for m in reversed(memory) if m.type == "human"), "")
            return f"{previous} {question}".strip()
        with _model_failures("The assistant is unavailable right now. Please try again shortly."):
            rewritten = str(self._condense.invoke({"history": memory, "question": question})).strip()
        rewritten = rewritten.splitlines()[0].strip() if rewritten else ""
        if not rewritten or len(rewritten) > 3 * len(question) + 300:
            previous = next((str(m.content) for m in reversed(memory) if m.type == "human"), "")
            return f"{previous} {question}".strip()
        asked = set(tokenize(question))
        if asked and not asked & set(tokenize(rewritten)):
            return question  # a rewrite that dropped every word the customer used answers another question
        return rewritten

    @staticmethod
    def _closed(
        answering: Generator[AnswerDelta, None, Answer], closing: str, stop: threading.Event | None
    ) -> Generator[AnswerDelta, None, Answer]:
        """The answer with the template's closing line after it, whoever wrote it (not after a handoff). Stopped
        by the customer: what was written so far is the answer; stopped before any was, nothing is saved."""
        answer, reasoning = yield from answering
        answer.cut_short = stop is not None and stop.is_set()
        if answer.cut_short and not answer.shown:
            raise AnswerStoppedError("You stopped the answer before it began.")
        if closing and _refusal(answer) is None:
            answer.shown = f"{answer.shown}\n\n{closing}"
            yield AnswerDelta(f"\n\n{closing}")
        return answer, reasoning

    def _answer(self, turn: _Answering) -> Generator[AnswerDelta, None, Answer]:
        """The answer as the customer may see it, and the chain-of-thought reasoning held back from it. Unless the
        template says off: a question the passages do not answer is handed off unwritten, every sentence is checked
        against the passages, and the passages' own sentences are quoted when the template says quote or when the
        check kept nothing the model wrote (policy trim)."""
        template, policy, reasoning = turn.template, turn.template.grounding_policy, list[str]()
        if policy == "off":
            with closing(self._visible(template, turn.inputs, reasoning, turn.stop)) as pieces:
                answer = yield from unchecked(pieces)
            return answer, "".join(reasoning)
        evidence = self._grounding.evidence(turn.passages, turn.question)
        gap = self._quotes.unanswered(evidence)
        if gap:
            return CheckedAnswer(gap=gap), ""
        answer = CheckedAnswer()
        if policy != "quote":
            with closing(self._visible(template, turn.inputs, reasoning, turn.stop)) as pieces:  # "refuse" may stop
                answer = yield from checked(pieces, evidence, policy)
        if not answer.shown and policy in ("quote", "trim"):
            quote = self._quotes.pick(evidence)
            lead = turn.leads(quote.sentences[0][0]) if quote else ""
            if quote:
                budget = template.max_new_tokens
                quote = quote.within(lambda text: self._model.count_tokens([AIMessage(text)]) <= budget, lead)
            answer = yield from quoted_answer(quote, lead, answer)
        return answer, "".join(reasoning)

    def _visible(
        self, template: AssistantTemplate, inputs: dict[str, object], reasoning: list[str], stop: threading.Event | None
    ) -> Generator[str, None, None]:
        """The answer text the model streams; with chain-of-thought, only what is inside its answer tags (the
        reasoning is appended to `reasoning` once the model is done)."""
        stream = self._model_stream(build_answer_chain(self._model.chat, template).stream(inputs), stop)
        if not template.chain_of_thought:
            yield from stream
            return
        extractor = AnswerExtractor()
        for delta in stream:
            visible = extractor.feed(delta)
            if visible:
                yield visible
        answer, thought = extractor.finish()
        reasoning.append(thought)
        released = extractor.released.strip()
        if answer.startswith(released) and len(answer) > len(released):
            yield answer[len(released) :]

    def interrupt_answers(self) -> None:
        """Shutting down: every answer being written stops at its next token with ServerStoppingError (nothing of
        it is saved; the model's slot is freed), and no new one starts."""
        self._stopping.set()

    def _model_stream(self, chunks: Iterator[BaseMessage], stop: threading.Event | None) -> Iterator[str]:
        """The model's text; it ends early when the customer stops it (closing the stream frees the model's slot)."""
        with _model_failures("The assistant could not finish this answer. Please try again."):
            try:
                for chunk in chunks:
                    if self._stopping.is_set():
                        raise ServerStoppingError(RESTARTING)
                    if stop is not None and stop.is_set():
                        return
                    if chunk.text:
                        yield chunk.text
            finally:
                getattr(chunks, "close", lambda: None)()  # now, not when collected: the model's slot is freed


@dataclass(frozen=True)
class _Answering:
    """What one turn's answer is written from."""

    template: AssistantTemplate
    inputs: dict[str, object]
    documents: list[Document]
    question: str
    leads: Callable[[int], str]  # passage number → the line before a quote from it
    stop: threading.Event | None = None

    @property
    def passages(self) -> list[str]:
        return [d.page_content for d in self.documents]


def _leads(replies: Replies, sources: list[Source]) -> Callable[[int], str]:
    def lead(n: int) -> str:
        source = sources[n - 1] if 0 < n <= len(sources) else None
        if source is None:
            return replies.lead("", "")
        return replies.lead(Path(source.document).stem, source.position.rsplit(" › ", 1)[-1])

    return lead


class _Clock:
    """When the turn started, when its first answer text went out, and how many pieces followed."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_delta_s: float | None = None
        self.deltas = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def timed(self, events: Generator[AnswerDelta, None, Answer]) -> Generator[AnswerDelta, None, Answer]:
        while True:
            try:
                event = next(events)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            if self.first_delta_s is None:
                self.first_delta_s = self.elapsed()
            self.deltas += 1
            yield event


@contextmanager
def _model_failures(message: str) -> Iterator[None]:
    """A model backend may fail in any way (torch, CUDA, HTTP, a tokenizer): broad on purpose, so the customer gets
    one sentence and the log the traceback. Our own errors already carry a customer's sentence."""
    try:
        yield
    except RagdeskError:
        raise
    except Exception as e:
        logger.exception("the language model failed while answering")
        raise ModelUnavailableError(message) from e


def _relevance_floor(template: AssistantTemplate, language: str) -> float:
    """The template's relevance threshold; for a Chinese question (its relevance is measured in English vectors
    and character overlap, both low for a colloquial question) the question's check decides, unless it is off."""
    return 0.0 if language == CHINESE and template.grounding_policy != "off" else template.relevance_threshold


def _refusal(answer: CheckedAnswer) -> str | None:
    if answer.shown:
        return None
    if answer.gap:
        return answer.gap
    return UNSUPPORTED_ANSWER if answer.verdicts else NO_ANSWER_WRITTEN


def _distinct(question: str, standalone: str) -> list[str]:
    """Search with the customer's own words and, for a follow-up, the rewritten question too: a poor rewrite
    cannot lose what the customer actually asked."""
    return [question] if standalone == question else [question, standalone]


def _record(kb: str, result: TurnResult, deltas: int) -> None:
    """The turn's metrics and one INFO line about it (never its text)."""
    outcome = "answered" if result.answered else "no_answer"
    metrics.CHAT_TURNS.labels(kb=kb, outcome=outcome).inc()
    metrics.ANSWER_MODES.labels(kb=kb, mode=result.mode, language=result.language).inc()
    metrics.RETRIEVAL_HITS.observe(len(result.sources))
    logger.info(
        "chat turn kb=%s mode=%s language=%s sources=%d template=v%s latency_s=%.2f",
        kb,
        result.mode,
        result.language,
        len(result.sources),
        result.template_version,
        result.timings.total_s,
    )
    if result.grounding_policy != "off":
        metrics.ANSWERS_CHECKED.labels(kb=kb).inc()
        metrics.SENTENCES_DROPPED.labels(kb=kb).inc(len(result.dropped))
        if result.refusal == UNSUPPORTED_ANSWER:
            metrics.REFUSED_BY_CHECK.labels(kb=kb).inc()
    first = result.timings.first_token_s
    if not result.answered:
        metrics.NO_ANSWER.labels(kb=kb).inc()
    elif first is not None:
        metrics.TIME_TO_FIRST_TOKEN.observe(first)
        streaming_s = result.timings.total_s - first
        if deltas > 1 and streaming_s > 0:
            metrics.TOKENS_PER_SECOND.observe((deltas - 1) / streaming_s)
