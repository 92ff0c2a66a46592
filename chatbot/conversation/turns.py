"""What one chat turn produces (events while it runs, a TurnResult at its end) and how a turn is kept in history."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.messages import BaseMessage

from knowledge.retriever import Source

NO_RELEVANT_PASSAGE = "no passage in the knowledge base is relevant enough"
UNSUPPORTED_ANSWER = "the documents do not support the model's answer"
NO_ANSWER_WRITTEN = "the model wrote no answer"


@dataclass(frozen=True)
class SourcesFound:
    """Retrieval is done: these passages answer (none when the turn is handed off)."""

    sources: list[Source]
    standalone_question: str


@dataclass(frozen=True)
class Waiting:
    """Many customers at once: this one's place in line (1 = next) and the estimated wait, until answering starts."""

    position: int
    estimated_s: float


@dataclass(frozen=True)
class AnswerDelta:
    """The next piece of the answer the customer sees."""

    text: str


@dataclass(frozen=True)
class Citation:
    """What an [n] marker in an answer points at: the n-th source."""

    n: int
    document: str
    position: str
    chunk_id: str
    snippet: str


@dataclass(frozen=True)
class CheckedSentence:
    """A sentence the model wrote and the grounding check's verdict on it."""

    text: str
    citations: tuple[int, ...] = ()
    reason: str | None = None  # why it was not shown; None when it was supported
    quoted: bool = False  # a passage's own sentence, quoted as the answer (not written by the model)

    @property
    def supported(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class Timings:
    retrieval_s: float  # from the question to the passages (condensing a follow-up included)
    first_token_s: float | None  # from the question to the first answer text; None when nothing was generated
    total_s: float


@dataclass(frozen=True)
class TurnResult:
    """A finished turn, as saved: every front end renders this and nothing else."""

    question: str
    answer: str
    sources: list[Source]
    turn: int  # which turn of the conversation this was (1 = the first)
    timings: Timings
    refusal: str | None = None  # why the handoff reply was given instead of an answer; None when answered
    reasoning: str = ""  # chain-of-thought, for admins only
    standalone_question: str = ""
    template_version: int | None = None
    grounding_policy: str = "off"
    checked: tuple[CheckedSentence, ...] = ()  # every sentence the model wrote, with the check's verdict
    language: str = "en"  # the question's: zh, en or other
    stopped: bool = False  # the customer stopped the answer; it is what was written until then

    @property
    def answered(self) -> bool:
        return self.refusal is None

    @property
    def latency_s(self) -> float:
        return self.timings.total_s

    @property
    def citations(self) -> list[Citation]:
        """The sources the answer's [n] markers point at, in order."""
        cited = sorted({n for s in self.checked if s.reason is None for n in s.citations})
        return [Citation(n, *_where(self.sources[n - 1])) for n in cited if 0 < n <= len(self.sources)]

    @property
    def dropped(self) -> list[CheckedSentence]:
        return [s for s in self.checked if s.reason is not None]

    @property
    def mode(self) -> str:
        return answer_mode(self.answered, self.checked)

    def stored_extras(self) -> dict[str, Any]:
        """What is kept beside the answer's text in the history (never shown to customers as such)."""
        extras: dict[str, Any] = {
            "sources": [asdict(s) for s in self.sources],
            "standalone_question": self.standalone_question,
            "latency_s": round(self.timings.total_s, 3),
            "first_token_s": None if self.timings.first_token_s is None else round(self.timings.first_token_s, 3),
            "answered": self.answered,
            "template_version": self.template_version,
            "language": self.language,
        }
        if self.refusal:
            extras["refusal"] = self.refusal
        if self.reasoning:
            extras["reasoning"] = self.reasoning
        if self.stopped:
            extras["stopped"] = True
        if self.grounding_policy != "off":
            extras["grounding"] = {"policy": self.grounding_policy, "sentences": [asdict(s) for s in self.checked]}
        return extras


TurnEvent = Waiting | SourcesFound | AnswerDelta | TurnResult


@dataclass(frozen=True)
class Turn:
    """A turn read back from history."""

    question: str
    answer: str
    sources: list[Source]
    answered: bool = True
    reasoning: str = ""
    template_version: int | None = None
    refusal: str | None = None
    checked: tuple[CheckedSentence, ...] = ()
    language: str = "en"
    stopped: bool = False

    @property
    def dropped(self) -> list[CheckedSentence]:
        return [s for s in self.checked if s.reason is not None]

    @property
    def mode(self) -> str:
        return answer_mode(self.answered, self.checked)


def answer_mode(answered: bool, checked: tuple[CheckedSentence, ...]) -> str:
    """How the answer came about: handoff, quoted (the passages' own sentences), trimmed (some of what the model
    wrote was not shown) or generated."""
    if not answered:
        return "handoff"
    if any(s.quoted for s in checked):
        return "quoted"
    return "trimmed" if any(s.reason is not None for s in checked) else "generated"


def turns_from_messages(messages: list[BaseMessage]) -> list[Turn]:
    """The stored question/answer pairs, with what was kept beside each answer."""
    turns = []
    for question, answer in zip(messages[::2], messages[1::2], strict=False):
        extra = answer.additional_kwargs
        turns.append(
            Turn(
                question=str(question.content),
                answer=str(answer.content),
                sources=[Source(**s) for s in extra.get("sources", [])],
                answered=bool(extra.get("answered", True)),
                reasoning=str(extra.get("reasoning", "")),
                template_version=extra.get("template_version"),
                refusal=extra.get("refusal"),
                checked=tuple(_checked(s) for s in extra.get("grounding", {}).get("sentences", [])),
                language=str(extra.get("language", "en")),
                stopped=bool(extra.get("stopped", False)),
            )
        )
    return turns


def _checked(stored: dict[str, Any]) -> CheckedSentence:
    return CheckedSentence(
        str(stored["text"]), tuple(stored.get("citations", ())), stored.get("reason"), bool(stored.get("quoted"))
    )


def _where(source: Source) -> tuple[str, str, str, str]:
    return source.document, source.position, source.chunk_id, source.snippet
