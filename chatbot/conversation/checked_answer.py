"""The model's answer as the customer receives it: streamed a sentence at a time, each sentence shown only after
the grounding check passed it, with [n] markers for the passages that support it. Nothing shown is withdrawn."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from chatbot.conversation.grounding import Evidence, split_sentences
from chatbot.conversation.turns import AnswerDelta, CheckedSentence

_END = re.compile(r"([.!?。！？:]+)$")


@dataclass
class CheckedAnswer:
    shown: str = ""
    verdicts: list[CheckedSentence] = field(default_factory=list)
    stopped: bool = False  # the refuse policy stopped the answer at an unsupported sentence
    quoted: bool = False  # the answer is the passages' own sentences (quote policy, or nothing written was kept)
    gap: str | None = None  # why the passages cannot answer the question (nothing was written then)
    cut_short: bool = False  # the customer pressed Stop: the answer is what was written until then

    @property
    def dropped(self) -> list[CheckedSentence]:
        return [v for v in self.verdicts if not v.supported]


def unchecked(pieces: Iterator[str]) -> Generator[AnswerDelta, None, CheckedAnswer]:
    """The answer as the model writes it (grounding off)."""
    result = CheckedAnswer()
    for piece in pieces:
        result.shown += piece
        yield AnswerDelta(piece)
    result.shown = result.shown.strip()
    return result


def checked(pieces: Iterator[str], evidence: Evidence, policy: str) -> Generator[AnswerDelta, None, CheckedAnswer]:
    """Supported sentences, each as soon as it is complete and judged; with policy "refuse", nothing after the
    first unsupported sentence."""
    result, pending = CheckedAnswer(), ""
    for piece in pieces:
        sentences, pending = split_sentences(pending + piece)
        for sentence in sentences:
            yield from _judged(sentence, evidence, policy, result)
            if result.stopped:
                return result
    if pending.strip():
        yield from _judged(pending.strip(), evidence, policy, result)
    return result


def _judged(
    sentence: str, evidence: Evidence, policy: str, result: CheckedAnswer
) -> Generator[AnswerDelta, None, None]:
    verdict = evidence.judge(sentence)
    result.verdicts.append(verdict)
    if not verdict.supported:
        result.stopped = policy == "refuse"
        return
    text = with_markers(sentence, verdict.citations)
    text = f" {text}" if result.shown else text
    result.shown += text
    yield AnswerDelta(text)


def with_markers(sentence: str, citations: tuple[int, ...]) -> str:
    """'The warranty is 2 years.' → 'The warranty is 2 years [1].'"""
    if not citations:
        return sentence
    markers = "".join(f"[{n}]" for n in citations)
    end = _END.search(sentence)
    if end is None:
        return f"{sentence} {markers}"
    return f"{sentence[: end.start()]} {markers}{end.group(1)}"
