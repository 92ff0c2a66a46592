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
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

from chatbot.conversation.checked_answer import CheckedAnswer, with_markers
from chatbot.conversation.grounding import Evidence, content_words, stem, unit, words
from chatbot.conversation.language import CHINESE, detect_language
from chatbot.conversation.turns import AnswerDelta, CheckedSentence
from chatbot.settings import GroundingSettings
from knowledge.chinese import chinese_words, simplified

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
_NAMING_TAGS = frozenset({"vn", "l", "eng"})  # jieba: a verb used as a noun (微信), a set phrase (以旧换新)
# Words a Chinese question uses to ask or to connect, not to name what it asks about.
_ASKING_ZH = frozenset(
    re.findall(
        r"\S+",
        """请问 你好 您好 我们 你们 您 我 你 他 她 它 的 了 吗 呢 吧 啊 呀 嘛 么 什么 怎么样 怎么 怎样 如何
        为什么 为啥 多少 多久 多长 几 几天 几个 哪些 哪里 哪个 哪 是否 是不是 有没有 能不能 可不可以 可以 能否
        会不会 还能 到底 一般 一下 请 是 有 在 会 能 要 还 还要 都 也 就 和 与 或 或者 这个 那个 这 那 时候
        时间 现在 已经 东西 以后 之后 然后 如果 的话 话 想 想要 需要 知道 办 怎么办 给 把 被 让 用 大概 最晚
        一共 一直 直接 根本 可是 但是 结果 还是 才 得 先 再 又 没 不 多长时间 怎样才能 怎么才能 如何才能
        机器 钱 一块钱""",
    )
)


@dataclass(frozen=True)
class Quote:
    sentences: tuple[tuple[int, str], ...]  # (passage number, the passage's own sentence)
    score: float

    @property
    def citations(self) -> tuple[int, ...]:
        return tuple(sorted({n for n, _ in self.sentences}))

    def within(self, fits: Callable[[str], bool], lead: str) -> Quote:
        """The quote without its last sentences until it fits the answer's budget (its first sentence stays)."""
        sentences = self.sentences
        while len(sentences) > 1 and not fits(Quote(sentences, self.score).text(lead)):
            sentences = sentences[:-1]
        return Quote(sentences, self.score)

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
        if _chinese(question):
            uncovered = _uncovered_terms(question, evidence.passages)
        elif closest < self._settings.clear_similarity:  # a passage sentence this close answers despite a stray word
            uncovered = self._uncovered(evidence)
        else:
            uncovered = []
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
        chinese = _chinese(question)
        return self._settings.min_chinese_quote_overlap if chinese else self._settings.min_quote_similarity

    def _closest(self, evidence: Evidence) -> float:
        """How close the nearest passage sentence is: cosine similarity, or for Chinese the share of pairs."""
        if _chinese(evidence.question):
            return float(self._scores(evidence).max(initial=0.0))
        return float(self._similarity(evidence).max(initial=0.0))

    def _scores(self, evidence: Evidence) -> np.ndarray:
        """Each passage sentence's score as an answer: for English, its similarity to the question plus a share of
        the question's own words in it; for Chinese, the share of the question's character pairs in it."""
        question = evidence.question
        said = [f"{topic} {s}" for topic, (_, s) in zip(evidence.topics, evidence.sentences, strict=True)]
        if _chinese(question):
            return _term_coverage(question, [s for _, s in evidence.sentences], evidence.topics)
        similarity = self._similarity(evidence)
        asked = {stem(w) for w in content_words(question) if w not in _ASKING}
        if not asked or not similarity.size:
            return similarity
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


def _chinese(question: str) -> bool:
    return detect_language(question) == CHINESE


def _asked_terms(question: str) -> list[str]:
    """A Chinese question's content words (jieba's segmentation, traditional read as simplified), without the
    words that only ask: "东西收到以后不想要了，有几天时间可以退？" → 收到, 退."""
    return list(dict.fromkeys(w for w, _ in chinese_words(question) if w not in _ASKING_ZH))


def _term_coverage(question: str, sentences: list[str], topics: list[str]) -> np.ndarray:
    """Chinese: the share of the question's content words (weighted by length) that each sentence contains; a word
    only in the sentence's heading counts half (every sentence of the section shares it)."""
    terms = _asked_terms(question)
    total = sum(len(t) for t in terms)
    if not total:
        return np.zeros(len(sentences), dtype=np.float32)
    shares = []
    for sentence, topic in zip(map(simplified, sentences), map(simplified, topics), strict=True):
        found = sum(len(t) * (1.0 if t in sentence else 0.5 if t in topic else 0.0) for t in terms)
        # Of two sentences holding the same words, the one mostly about them: "标准配送：2至4个工作日" before a
        # long sentence about an exception to it.
        shares.append(found / total + 0.1 * found / max(len(sentence), 1))
    return np.asarray(shares, dtype=np.float32)


def _uncovered_terms(question: str, passages: Sequence[str]) -> list[str]:
    """The question's nouns and names of two or more characters that no passage contains (咖啡机, 武汉, 分期付款):
    what the question is about. A verb or an adverb no passage uses ("找到", "换成") is only how it is asked."""
    known = simplified(" ".join(passages))
    named = [w for w, tag in chinese_words(question) if tag[:1] == "n" or tag in _NAMING_TAGS]
    return [w for w in dict.fromkeys(named) if len(w) >= 2 and w not in _ASKING_ZH and w not in known]


def quoted_answer(quote: Quote | None, lead: str, result: CheckedAnswer) -> Generator[AnswerDelta, None, CheckedAnswer]:
    """The quote as the customer's answer, after whatever the model wrote (kept in `result` with its verdicts)."""
    if quote is None:
        return result
    result.shown, result.quoted = quote.text(lead), True
    result.verdicts += [CheckedSentence(s, citations=(n,), quoted=True) for n, s in quote.sentences]
    yield AnswerDelta(result.shown)
    return result
