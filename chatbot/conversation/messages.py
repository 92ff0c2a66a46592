"""What the assistant itself says to a customer (not the documents, not the model), in the customer's language.

A knowledge base's template says it in the template's own language; a customer who asks in another language the
catalogue speaks gets the catalogue's words instead: a Chinese customer of an English knowledge base gets the
Chinese handoff, and the quoted passages under a Chinese lead.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatbot.conversation.language import CHINESE, ENGLISH, detect_language
from chatbot.conversation.templates import CHINESE_DEFAULT, ENGLISH_DEFAULT, AssistantTemplate


@dataclass(frozen=True)
class Replies:
    no_answer: str  # the handoff reply
    quote_lead: str  # the line before a quoted answer; may name {document} and {section}
    closing: str = ""  # the line after every answer (the template's closing line)

    def lead(self, document: str, section: str) -> str:
        values = {"document": document, "section": section}
        try:
            return self.quote_lead.format_map(values)
        except (KeyError, IndexError, ValueError):  # an admin's lead with other braces is shown as written
            return self.quote_lead


CATALOGUE = {
    ENGLISH: Replies(ENGLISH_DEFAULT.no_answer_reply, ENGLISH_DEFAULT.quote_lead),
    CHINESE: Replies(CHINESE_DEFAULT.no_answer_reply, CHINESE_DEFAULT.quote_lead),
}


def replies_for(template: AssistantTemplate, language: str) -> Replies:
    """The template's own replies when the customer writes in its language (or one the catalogue does not
    speak); else the catalogue's replies in the customer's language."""
    own = Replies(template.no_answer_reply, template.quote_lead, template.closing_line.strip())
    if language not in CATALOGUE or detect_language(template.no_answer_reply) == language:
        return own
    return CATALOGUE[language]


BUSY = {
    ENGLISH: "Many customers are asking right now, so I cannot answer this at the moment. Please try again in a "
    "minute, or contact our support team and a person will help you.",
    CHINESE: "现在咨询的顾客很多，暂时无法回答您的问题。请稍后再试，或联系我们的人工客服，我们会尽快为您处理。",
}


def busy_reply(question: str) -> str:
    """The busy reply in the language of the customer's question (English unless it is Chinese)."""
    return BUSY.get(detect_language(question), BUSY[ENGLISH])
