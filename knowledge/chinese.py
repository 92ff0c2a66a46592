"""Chinese text as the indexes and checks compare it: traditional characters read as simplified (台灣 = 台湾), so a
customer from Hong Kong or Taiwan finds the simplified documents and the other way round; and split into words
(jieba's dictionary, through rjieba) where a check needs the question's terms."""

from __future__ import annotations

import re
import unicodedata

import rjieba
from opencc import OpenCC

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TO_SIMPLIFIED = OpenCC("t2s")


def simplified(text: str) -> str:
    """Full-width letters and digits as ASCII (１５０ = 150), traditional characters as simplified."""
    text = unicodedata.normalize("NFKC", text)
    return _TO_SIMPLIFIED.convert(text) if _HAN.search(text) else text


def chinese_words(text: str) -> list[tuple[str, str]]:
    """The words of a text that hold Chinese characters, simplified, each with its part of speech (jieba's tags:
    n noun, ns place, nz other proper noun, v verb...): "能寄到台灣嗎？" → (能, v), (寄到, v), (台湾, ns), (吗, y)."""
    return [(w, tag) for w, tag in rjieba.tag(simplified(text)) if _HAN.search(w)]
