"""The words of a text as the keyword index counts them: English words without stopwords, Chinese characters and
character bigrams (no dictionary needed; robust to domain words a segmenter does not know)."""

from __future__ import annotations

import re

from bm25s.stopwords import STOPWORDS_EN

from knowledge.chinese import simplified

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_STOPWORDS = frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """English: lower-case words without stopwords. Chinese: every character and every character bigram."""
    tokens: list[str] = []
    position = 0
    lowered = text.lower()
    for match in _CJK_RUN.finditer(lowered):
        tokens.extend(_latin_tokens(lowered[position : match.start()]))
        tokens.extend(_chinese_tokens(match.group()))
        position = match.end()
    tokens.extend(_latin_tokens(lowered[position:]))
    return tokens


def _latin_tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w not in _STOPWORDS]


def _chinese_tokens(run: str) -> list[str]:
    run = simplified(run)
    return list(run) + [run[i : i + 2] for i in range(len(run) - 1)]
