"""Text in API requests: what no text should hold (a lone surrogate, a NUL, another control character) is refused
with 422 before it reaches a model, an index or the database."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from chatbot.conversation.plain_text import unreadable


def _plain(text: str) -> str:
    problem = unreadable(text)
    if problem:
        raise ValueError(f"contains {problem}; send plain UTF-8 text")
    return text


Text = Annotated[str, AfterValidator(_plain)]
