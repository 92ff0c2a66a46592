"""What no customer's text should hold: a lone surrogate (half of a character, from a broken client), a NUL or
another control character. The tokenizers and databases behind a question fail on them in their own ways."""

from __future__ import annotations

import unicodedata

_ALLOWED_CONTROLS = frozenset("\t\n\r")


def unreadable(text: str) -> str | None:
    """What in the text is not text, in words; None when it is all text."""
    for char in text:
        category = unicodedata.category(char)
        if category == "Cs":
            return "a lone surrogate (half of a character)"
        if char == "\x00":
            return "a NUL character"
        if category == "Cc" and char not in _ALLOWED_CONTROLS:
            return f"the control character U+{ord(char):04X}"
    return None
