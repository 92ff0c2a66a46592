"""The customer's language, read from the question's script: Chinese (simplified or traditional), English, or other.

No library is needed for the languages the product serves: Han characters (at least as many as Latin words) make a
question Chinese; Latin letters
with English function words make it English; anything else (Cyrillic, Arabic, French, an emoji) is "other", which
is answered like English but never handed to a model that was not declared to speak it.
"""

from __future__ import annotations

import re
import unicodedata

CHINESE, ENGLISH, OTHER = "zh", "en", "other"
LANGUAGES = (CHINESE, ENGLISH)  # the languages the messages catalogue speaks

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_ENGLISH_WORDS = frozenset(
    re.findall(
        r"\S+",
        """a an the is are was were be do does did can could will would should may i you we my your our it this that
    what when where which who why how there here to of in on at for with from by and or not no yes if please
    hello hi thanks thank""",
    )
)


def detect_language(text: str) -> str:
    """ "zh", "en" or "other". Full-width letters and digits count as their ASCII selves."""
    text = unicodedata.normalize("NFKC", text)
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return OTHER
    han = sum(1 for c in letters if _HAN.match(c))
    words = _LATIN_WORD.findall(text.lower().replace("’", "'"))
    if han and han >= len(words):  # "Aurora kettle 保修多久？": a product's English name in a Chinese question
        return CHINESE
    latin = sum(len(w) for w in words)
    if latin / len(letters) < 0.7:
        return OTHER
    if len(words) <= 2 or any(w in _ENGLISH_WORDS for w in words):
        return ENGLISH  # a short query ("refund policy", "warranty") is taken as English
    return OTHER
