"""How close an answer is to a reference answer: SQuAD's token F1 and "contains" for English, CMRC 2018's for
Chinese. bench/answers.py and the evaluation gate score with these, so their figures mean the same."""

from __future__ import annotations

import re
import string
from collections import Counter

from knowledge.chinese import simplified

F1_RIGHT = 0.5  # an answer is right when it contains a reference or reaches this F1
CHINESE_PUNCTUATION = set("，。！？；：“”‘’（）《》〈〉【】「」『』、…—～·－　,.!?;:()[]{}<>'\"`~-_/\\|@#$%^&*+=")
ARTICLES = re.compile(r"\b(a|an|the)\b")
NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's answer normalization: lowercase, punctuation and articles dropped, whitespace collapsed."""
    return " ".join(ARTICLES.sub(" ", text.lower().translate(NO_PUNCTUATION)).split())


def token_f1(answer: str, reference: str) -> float:
    predicted, expected = normalize(answer).split(), normalize(reference).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def chinese_segments(text: str) -> list[str]:
    """CMRC 2018's mixed segmentation: each Chinese character, each run of other letters or digits, no punctuation
    (and traditional characters read as simplified)."""
    segments, word = [], ""
    for char in simplified(text.lower().strip()):
        if char in CHINESE_PUNCTUATION or char.isspace() or "\u4e00" <= char <= "\u9fff":
            segments += [word] if word else []
            word = ""
            if not (char in CHINESE_PUNCTUATION or char.isspace()):
                segments.append(char)
        else:
            word += char
    return segments + ([word] if word else [])


def chinese_f1(answer: str, reference: str) -> float:
    """CMRC 2018's F1: from the longest common run of segments of the reply and the reference."""
    predicted, expected = chinese_segments(answer), chinese_segments(reference)
    longest, previous = 0, [0] * (len(expected) + 1)
    for p in predicted:
        current = [0] * (len(expected) + 1)
        for j, e in enumerate(expected):
            if p == e:
                current[j + 1] = previous[j] + 1
                longest = max(longest, current[j + 1])
        previous = current
    if not longest:
        return 0.0
    precision, recall = longest / len(predicted), longest / len(expected)
    return 2 * precision * recall / (precision + recall)


def reference_match(answer: str, references: list[str], chinese: bool) -> tuple[float, bool]:
    """(best F1 over the references, whether the answer contains one of them), scored the language's way."""
    if chinese:
        f1 = max((chinese_f1(answer, ref) for ref in references), default=0.0)
        flat = "".join(chinese_segments(answer))
        return f1, any("".join(chinese_segments(ref)) in flat for ref in references if chinese_segments(ref))
    normalized = normalize(answer)
    f1 = max((token_f1(answer, ref) for ref in references), default=0.0)
    return f1, any(normalize(ref) and normalize(ref) in normalized for ref in references)
