"""What a template asks of the model that the customer will not reliably get, said before it goes live.

A small model does not follow every line of a system prompt, and under the grounding check a sentence that the
documents do not say (a sign-off, a slogan) is removed even when the model writes it. So the Prompts tab warns
about instructions to start or end every answer with fixed words (the closing-line field does that for certain),
says when the model writes nothing at all (the quote policy), and after a trial says which such instruction the
answer did not follow."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.conversation.templates import AssistantTemplate

_QUOTES = "\"'“”‘’「」"
_FIXED_TEXT = re.compile(
    r"\b(?P<verb>end|finish|close|conclude|sign off|start|begin|open)\s+"
    r"(?:(?:each|every|all|your|the|any)\s+){0,2}(?:answers?|repl(?:y|ies)|responses?|messages?)\s+"
    r"(?:with|by saying|by writing)\s*:?\s*(?P<text>[\"'“‘「][^\n]+?[\"'”’」]|[^\n.!?]+[.!?]?)",
    re.IGNORECASE,
)
_ENDING_VERBS = {"end", "finish", "close", "conclude", "sign off"}


@dataclass(frozen=True)
class FixedText:
    """An instruction to put the same words at the start or the end of every answer."""

    at: str  # "start" or "end"
    text: str

    def followed_by(self, answer: str) -> bool:
        wanted, written = _plain(self.text), _plain(answer)
        return written.startswith(wanted) if self.at == "start" else written.endswith(wanted)

    def describe(self) -> str:
        return f'{self.at} every answer with "{self.text}"'


def fixed_text_instructions(system_prompt: str) -> list[FixedText]:
    """The system prompt's instructions to start or end every answer with given words."""
    found = []
    for match in _FIXED_TEXT.finditer(system_prompt):
        text = match["text"].strip().strip(_QUOTES + " ")
        at = "end" if match["verb"].lower() in _ENDING_VERBS else "start"
        if text:
            found.append(FixedText(at, text))
    return found


def template_advice(template: AssistantTemplate) -> list[str]:
    """Warnings (the template can still be saved): what in it the customer will not reliably see."""
    advice = []
    if template.grounding_policy == "quote":
        advice.append(
            "With the grounding policy 'quote' the model writes no answer: answers are the documents' own "
            "sentences. The system prompt's instructions, the examples and chain-of-thought change nothing the "
            "customer reads; the quote lead, the closing line and the no-answer reply do."
        )
    for instruction in fixed_text_instructions(template.system_prompt):
        if instruction.at == "end" and _plain(template.closing_line) == _plain(instruction.text):
            continue
        advice.append(
            f"The system prompt asks the model to {instruction.describe()}. The model does not do this reliably, "
            "and the grounding check removes sentences the documents do not say. "
            + (
                "Put these words in the closing line, which is added to every answer."
                if instruction.at == "end"
                else "Put them in the quote lead, or in the closing line at the end."
            )
        )
    return advice


def unfollowed(template: AssistantTemplate, answer: str) -> list[str]:
    """After a trial: the system prompt's fixed-text instructions this answer did not follow."""
    return [i.describe() for i in fixed_text_instructions(template.system_prompt) if not i.followed_by(answer)]


def _plain(text: str) -> str:
    return re.sub(r"[\s" + re.escape(_QUOTES) + r"]+", " ", text).strip().lower()
