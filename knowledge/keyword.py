"""The keyword index: BM25 over chunk texts, tokenized for English words and Chinese characters and bigrams."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import bm25s
from bm25s.stopwords import STOPWORDS_EN

from knowledge.chinese import simplified
from knowledge.registry import ChunkRecord

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_STOPWORDS = frozenset(STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """English: lower-case words without stopwords. Chinese: every character and every character bigram
    (no dictionary needed; robust to domain words a segmenter does not know)."""
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


class KeywordIndex:
    """An immutable BM25 index over a fixed list of chunks."""

    def __init__(self, chunks: Sequence[ChunkRecord]) -> None:
        self.chunks = list(chunks)
        self._bm25 = bm25s.BM25()
        tokenized = [tokenize(c.text) or [""] for c in self.chunks]
        self._document_frequency = Counter(token for tokens in tokenized for token in set(tokens))
        if self.chunks:
            self._bm25.index(tokenized, show_progress=False)

    def idf(self, token: str) -> float:
        """How telling a word is in this knowledge base; words it never contains weigh the most."""
        n = len(self.chunks)
        return math.log((n + 1) / (self._document_frequency.get(token, 0) + 0.5))

    def search(self, query: str, k: int) -> list[tuple[ChunkRecord, float]]:
        tokens = tokenize(query)
        if not self.chunks or not tokens:
            return []
        ids, scores = self._bm25.retrieve([tokens], k=min(k, len(self.chunks)), show_progress=False)
        return [(self.chunks[i], float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
