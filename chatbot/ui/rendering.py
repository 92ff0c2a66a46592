"""How answers and document text are shown: sources under the answer, everything from outside shown literally."""

from __future__ import annotations

import re

from knowledge.retriever import Source

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_MARKDOWN_EMPHASIS = re.compile(r"(\*\*|__|`)")


def escape_markdown(text: str) -> str:
    """Show document or user text literally: no markdown formatting, no HTML."""
    text = " ".join(text.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def show_answer(answer: str) -> str:
    """The model's answer keeps its markdown (lists, bold) but any HTML it writes is shown as text."""
    return answer.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_answer(answer: str, sources: list[Source]) -> str:
    if not sources:
        return show_answer(answer)
    lines = [show_answer(answer), "", "**Sources**"]
    for number, source in enumerate(sources, start=1):
        where = f" · {escape_markdown(source.position)}" if source.position else ""
        plain = _MARKDOWN_EMPHASIS.sub("", source.snippet)
        snippet = escape_markdown(plain[:180]) + ("…" if len(plain) > 180 else "")
        lines.append(f"{number}. **{escape_markdown(source.document)}**{where} — {snippet}")
    return "\n".join(lines)
