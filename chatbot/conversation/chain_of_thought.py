"""Chain-of-thought output → what the customer may see. The model is asked to reason inside <reasoning> tags and
answer inside <answer> tags; small models often do not. Whatever they emit, the answer is the text meant for the
customer or, where there is none, the reasoning's own conclusion; only the grounding policy may then refuse it.
An empty answer is never the accident of a missing tag."""

from __future__ import annotations

import re

from chatbot.conversation.grounding import split_sentences

REASONING_OPEN, REASONING_CLOSE = "<reasoning>", "</reasoning>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
TAGS = (REASONING_OPEN, REASONING_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
COT_INSTRUCTIONS = (
    "Before replying, think step by step inside <reasoning></reasoning> tags: which documents are relevant, "
    "what exactly they say, and what follows for this customer. Then write the reply to the customer inside "
    "<answer></answer> tags. Only the text inside <answer> is shown to the customer."
)
# A sentence that draws the conclusion: from the last of these to the end is the reasoning's answer.
_CONCLUDING = re.compile(
    r"^(so|therefore|thus|hence|in short|in summary|to sum up|this means|that means|the answer is|"
    r"the customer (can|has|may|should|must|will)|you (can|have|may|should|must|will)|所以|因此|综上|总之|答案是)",
    re.IGNORECASE,
)


class AnswerExtractor:
    """While streaming, only text inside <answer>…</answer> is released (a possible partial closing tag is held
    back), so reasoning never flashes on screen; finish() returns (answer, reasoning)."""

    def __init__(self) -> None:
        self.raw = ""
        self._released = 0

    def feed(self, delta: str) -> str:
        self.raw += delta
        start = self.raw.find(ANSWER_OPEN)
        if start < 0:
            return ""
        body = start + len(ANSWER_OPEN)
        end = self.raw.find(ANSWER_CLOSE, body)
        visible_end = end if end >= 0 else max(body, len(self.raw) - (len(ANSWER_CLOSE) - 1))
        released_end = body + self._released
        if visible_end <= released_end:
            return ""
        self._released = visible_end - body
        return self.raw[released_end:visible_end]

    @property
    def released(self) -> str:
        start = self.raw.find(ANSWER_OPEN)
        return "" if start < 0 else self.raw[start + len(ANSWER_OPEN) :][: self._released]

    def finish(self) -> tuple[str, str]:
        """(answer, reasoning). The answer is, in order: the text inside <answer>; the text after </reasoning>;
        the text written before an opening <reasoning> (the model answered first); the model's whole output when
        it used no tags; else the conclusion of the reasoning (it ran out of tokens, or left the answer empty)."""
        raw = self.raw
        start = raw.find(ANSWER_OPEN)
        if start >= 0:
            answer = raw[start + len(ANSWER_OPEN) :].split(ANSWER_CLOSE, 1)[0]
            reasoning = strip_tags(raw[:start])
        elif REASONING_CLOSE in raw:
            thought, answer = raw.split(REASONING_CLOSE, 1)
            reasoning = strip_tags(thought)
        elif REASONING_OPEN in raw:
            opened = raw.find(REASONING_OPEN)
            answer, reasoning = raw[:opened], strip_tags(raw[opened:])
        else:
            return raw.strip(), ""
        answer = strip_tags(answer)
        return answer or conclusion(reasoning), reasoning


def conclusion(reasoning: str) -> str:
    """What the reasoning concludes: its complete sentences from the last one that draws a conclusion ("So …",
    "Therefore …"), or its last complete sentence; an unfinished sentence at the end (tokens ran out) is left
    out. Empty when the reasoning has no complete sentence."""
    sentences, _ = split_sentences(reasoning + " ")
    sentences = [s for s in sentences if s]
    if not sentences:
        return ""
    concluding = [i for i, s in enumerate(sentences) if _CONCLUDING.match(s)]
    return " ".join(sentences[concluding[-1] :] if concluding else sentences[-1:])


def strip_tags(text: str) -> str:
    for tag in TAGS:
        text = text.replace(tag, "")
    return text.strip()
