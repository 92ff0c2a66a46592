"""Quoting: answer with the documents' own sentences, and know when the passages do not answer the question.

`unanswered` looks at the question before anything is written: a word the customer used that no retrieved passage
contains, nor a word near it in meaning (the bundled embeddings: "paid" ~ "payment", "ferry" ~ "ferries", but not
"tandem" ~ "bike"), means the passages are about something else ("Do you rent tandem bikes?"), and the turn is
handed off. `pick` chooses the passage sentences that answer the question best (meaning and the question's own
words for English, character pairs for Chinese), verbatim, each with the [n] of its passage. Both are the reply
when a template says "quote", and `pick` is the fallback when the grounding check rejects every sentence the model
wrote.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

from chatbot.conversation.checked_answer import CheckedAnswer, with_markers
from chatbot.conversation.grounding import Evidence, cjk_pairs, content_words, stem, unit, words
from chatbot.conversation.turns import AnswerDelta, CheckedSentence
from chatbot.settings import GroundingSettings
from knowledge.retriever import is_mostly_chinese

# Words a question uses to ask, not to name what it asks about: "How *long* does it *take*?"
_ASKING = frozenset(
    re.findall(
        r"\S+",
        """much many long far often old big time times way happen happens happened take takes kind sort thing things
        anyone someone day days still already exactly possible able allowed hasn't haven't isn't aren't doesn't didn't
        one two three four five six seven eight nine ten first second whats dont doesnt cant isnt wont didnt im ive
        id""",
    )
)
_WORD_CACHE_SIZE = 20_000
_ASKS = re.compile(r"[?？]\s*$")


@dataclass(frozen=True)
class Quote:
    sentences: tuple[tuple[int, str], ...]  # (passage number, the passage's own sentence)
    score: float

    @property
    def citations(self) -> tuple[int, ...]:
        return tuple(sorted({n for n, _ in self.sentences}))

    def text(self, lead: str) -> str:
        quoted = " ".join(with_markers(sentence, (n,)) for n, sentence in self.sentences)
        return f"{lead} {quoted}".strip() if lead else quoted


class QuotePicker:
    """Built once per deployment (it keeps the vectors of words it has seen); thread-safe."""

    def __init__(self, embeddings: Embeddings, settings: GroundingSettings) -> None:
        self._embeddings = embeddings
        self._settings = settings
        self._word_vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def unanswered(self, evidence: Evidence) -> str | None:
        """Why the passages cannot answer the question, or None: a word of it that no passage covers, or no passage
        sentence close enough to it."""
        question = evidence.question
        if not evidence.sentences:
            return "no passage sentence is close enough to the question"
        closest = self._closest(evidence)
        if closest < self._settings.clear_similarity and not is_mostly_chinese(question):
            uncovered = self._uncovered(evidence)  # a passage sentence this close answers despite a stray word
            if uncovered:
                return f"the documents do not mention '{uncovered[0]}'"
        if closest < self._floor(question):
            return "no passage sentence is close enough to the question"
        return None

    def _uncovered(self, evidence: Evidence) -> list[str]:
        """The question's words that no passage contains, nor a word near it in meaning."""
        known = {stem(w) for p in evidence.passages for w in words(p)}
        asked = dict.fromkeys(content_words(evidence.question))
        missing = [w for w in asked if stem(w) not in known and w not in _ASKING and "'" not in w]
        passage_words = sorted({w for p in evidence.passages for w in content_words(p)})
        if not missing or not passage_words:
            return missing
        nearest = (self._vectors(missing) @ self._vectors(passage_words).T).max(axis=1)
        return [w for w, near in zip(missing, nearest, strict=True) if near < self._settings.word_similarity]

    def pick(self, evidence: Evidence) -> Quote | None:
        """The passage sentences that answer the question best (at most `max_quoted_sentences`, in passage order),
        or None when none is close enough to it."""
        if not evidence.sentences or self._closest(evidence) < self._floor(evidence.question):
            return None
        scores = self._scores(evidence)
        sentences = evidence.sentences
        answers = [i for i, (_, s) in enumerate(sentences) if not _ASKS.search(s)]  # a passage's question is no answer
        if not answers:
            return None
        best = float(scores[answers].max())
        ranked = [
            i for i in sorted(answers, key=lambda i: -scores[i]) if scores[i] >= best - self._settings.quote_margin
        ]
        top = ranked[0]
        if top + 1 in answers and sentences[top + 1][0] == sentences[top][0]:
            ranked.insert(1, top + 1)  # the sentence after the best one often finishes it ("A late return costs...")
        distinct = {sentences[i][1]: i for i in reversed(ranked)}  # the same text in two passages: quoted once
        ranked = [i for i in ranked if distinct[sentences[i][1]] == i]
        chosen = sorted(dict.fromkeys(ranked[: self._settings.max_quoted_sentences]))
        return Quote(tuple((sentences[i][0], sentences[i][1].replace("**", "")) for i in chosen), best)

    def _floor(self, question: str) -> float:
        chinese = is_mostly_chinese(question)
        return self._settings.min_chinese_quote_overlap if chinese else self._settings.min_quote_similarity

    def _closest(self, evidence: Evidence) -> float:
        """How close the nearest passage sentence is: cosine similarity, or for Chinese the share of pairs."""
        if is_mostly_chinese(evidence.question):
            return float(_pair_overlap(evidence.question, [s for _, s in evidence.sentences]).max(initial=0.0))
        return float(self._similarity(evidence).max(initial=0.0))

    def _scores(self, evidence: Evidence) -> np.ndarray:
        """Each passage sentence's score as an answer: for English, its similarity to the question plus a share of
        the question's own words in it; for Chinese, the share of the question's character pairs in it."""
        question = evidence.question
        if is_mostly_chinese(question):
            return _pair_overlap(question, [s for _, s in evidence.sentences])
        similarity = self._similarity(evidence)
        asked = {stem(w) for w in content_words(question) if w not in _ASKING}
        if not asked or not similarity.size:
            return similarity
        said = [f"{topic} {s}" for topic, (_, s) in zip(evidence.topics, evidence.sentences, strict=True)]
        covered = [len(asked & {stem(w) for w in words(s)}) / len(asked) for s in said]
        return similarity + self._settings.quote_word_weight * np.asarray(covered, dtype=np.float32)

    def _similarity(self, evidence: Evidence) -> np.ndarray:
        vectors = evidence.vectors
        if vectors is None:
            return np.zeros(0, dtype=np.float32)
        return vectors @ evidence.question_vector  # type: ignore[no-any-return]

    def _vectors(self, terms: Sequence[str]) -> np.ndarray:
        """Unit vectors of single words, from the cache where seen before."""
        with self._lock:
            new = [t for t in dict.fromkeys(terms) if t not in self._word_vectors]
            if new:
                self._word_vectors.update(zip(new, unit(self._embeddings.embed_documents(new)), strict=True))
            found = np.stack([self._word_vectors[t] for t in terms])
            while len(self._word_vectors) > _WORD_CACHE_SIZE:
                self._word_vectors.popitem(last=False)
        return found


def _pair_overlap(question: str, sentences: list[str]) -> np.ndarray:
    """Chinese: the share of the question's character pairs that each sentence contains."""
    asked = cjk_pairs(question)
    if not asked:
        return np.zeros(len(sentences), dtype=np.float32)
    return np.asarray([len(asked & cjk_pairs(s)) / len(asked) for s in sentences], dtype=np.float32)


def quoted_answer(quote: Quote | None, lead: str, result: CheckedAnswer) -> Generator[AnswerDelta, None, CheckedAnswer]:
    """The quote as the customer's answer, after whatever the model wrote (kept in `result` with its verdicts)."""
    if quote is None:
        return result
    result.shown, result.quoted = quote.text(lead), True
    result.verdicts += [CheckedSentence(s, citations=(n,), quoted=True) for n, s in quote.sentences]
    yield AnswerDelta(result.shown)
    return result
