"""GroundingCheck: whether each sentence of an answer is supported by the passages it was written from.

A sentence passes when a passage sentence is close to it in meaning (the bundled embeddings) and it adds nothing
the passages do not say: every number is in a passage, every name is in a passage, no condition or negation of the
passage it follows is dropped or flipped, and a bare "yes" is only as good as the question's own words are in that
passage. The passages that support a sentence are its citations; a sentence that fails says why.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property

import numpy as np
from langchain_core.embeddings import Embeddings

from chatbot.conversation.language import CHINESE, detect_language
from chatbot.conversation.turns import CheckedSentence
from chatbot.settings import GroundingSettings
from knowledge.chinese import simplified
from knowledge.retriever import is_mostly_chinese

_EMBEDDING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="grounding")  # passages, while the model writes
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？；])\s*|\n+")
_WRAPPED_LINE = re.compile(r"(?<!\n)\n(?!\n|\s*(?:[-*#|]|\d+[.)]))")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SENTENCE_END_AT = re.compile(r"[.!?。！？:]\s*$")
_LEADING_ANSWER = re.compile(r"^\s*(?:yes|no)\b[,.!]?\s*", re.IGNORECASE)
_CHINESE_DIGITS = {c: n for n, c in enumerate("零一二三四五六七八九")} | {"两": 2}
_CHINESE_UNITS = {"十": 10, "百": 100, "千": 1000}
_CHINESE_NUMBER = re.compile("[零一二两三四五六七八九十百千]+")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_CLAUSE_BREAK = re.compile(r"[;()]|,\s+(?:and|but|while|whereas|including|except)\b|\s[—–-]\s|,(?=\s)")
_QUANTITY = re.compile(r"(\d+(?:[.,]\d+)*)\s*(?:business\s+|working\s+|calendar\s+)?([a-z%]+)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_NUMBER_WORDS = {
    word: str(n)
    for n, word in enumerate(re.findall(r"\S+", "zero one two three four five six seven eight nine ten eleven twelve"))
} | {"fifteen": "15", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "hundred": "100"}
_CUES = frozenset({"not", "no", "never", "cannot", "can't", "only", "unless", "except", "without", "don't", "won't"})
_AFFIRMATIONS = frozenset({"yes", "sure", "certainly", "absolutely", "of course"})
_STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        """a about above after again all also am an and any are as at be because been before being below between
        both but by can could did do does doing down during each few for from further had has have having he her
        here hers him his how i if in into is it its itself just me more most my no nor not now of off on once only
        or other our ours out over own same she should so some such than that the their theirs them then there these
        they this those through to too under until up very was we were what when where which while who whom why will
        with would you your yours yourself yes please thank thanks help hope happy glad sorry question questions
        answer need needs get got make made like want may might must us let sure here's there's it's that's what's
        i'm we're you're you'll we'll i'll ok okay well really simply anything something information""",
    )
)


def split_sentences(text: str) -> tuple[list[str], str]:
    """The complete sentences of a growing text, and the unfinished rest."""
    parts, carried = [], ""
    for part in _SENTENCE_END.split(text):
        if part.strip() and not any(c.isalpha() for c in part):  # "1." of a list: it starts the next sentence
            carried += part.strip() + " "
            continue
        parts.append(carried + part if part.strip() else part)
        carried = "" if part.strip() else carried
    done, rest = parts[:-1], parts[-1] if parts else ""
    return [p.strip() for p in done if p.strip()], carried + rest


class GroundingCheck:
    """Built once per deployment; `evidence` prepares one turn's passages, and judges that turn's sentences."""

    def __init__(self, embeddings: Embeddings, settings: GroundingSettings) -> None:
        self._embeddings = embeddings
        self.settings = settings

    def evidence(self, passages: Sequence[str], question: str) -> Evidence:
        return Evidence(self._embeddings, self.settings, passages, question)


class Evidence:
    """One turn's passages, split into sentences and into clauses, embedded once: in a thread of its own, while
    the model writes its first sentence."""

    def __init__(
        self, embeddings: Embeddings, settings: GroundingSettings, passages: Sequence[str], question: str
    ) -> None:
        self._embeddings = embeddings
        self._settings = settings
        self.question = question
        self.sentences: list[tuple[int, str]] = [
            (number, s) for number, p in enumerate(passages, start=1) for s in _passage_sentences(p)
        ]
        self.topics = [_heading_and_body(passages[n - 1])[0] for n, _ in self.sentences]  # each sentence's heading
        self._embedded: Future[np.ndarray] | None = None
        self._lock = threading.Lock()
        if detect_language(question) != CHINESE:  # the bundled vectors read English: a Chinese turn may not need them
            self._start_embedding()
        self.passages = list(passages)
        whole = " ".join(passages)
        self._words = {stem(w) for w in words(whole)}
        self._numbers = _numbers(whole)

    def _embed(self, sentences: list[str]) -> np.ndarray:
        return unit(self._embeddings.embed_documents(sentences))

    @cached_property
    def question_vector(self) -> np.ndarray:
        return unit([self._embeddings.embed_query(self.question)])[0]

    def _start_embedding(self) -> Future[np.ndarray] | None:
        with self._lock:
            if self._embedded is None and self.sentences:
                self._embedded = _EMBEDDING.submit(self._embed, [s for _, s in self.sentences])
            return self._embedded

    @property
    def vectors(self) -> np.ndarray | None:
        """The passage sentences' unit vectors (None without passages), embedded once, when first needed."""
        embedded = self._start_embedding()
        return None if embedded is None else embedded.result()

    def judge(self, sentence: str) -> CheckedSentence:
        if not self.sentences:
            return CheckedSentence(sentence, reason="there are no passages to check it against")
        if is_mostly_chinese(sentence):
            return self._judge_chinese(sentence)
        vectors = self.vectors
        if vectors is None:
            return CheckedSentence(sentence, reason="there are no passages to check it against")
        similarity = vectors @ unit([self._embeddings.embed_query(sentence)])[0]
        closest = [self.sentences[i][1] for i in np.argsort(-similarity)[:3]]
        reason = self._problem(sentence, closest, float(similarity.max()))
        if reason:
            return CheckedSentence(sentence, reason=reason)
        floor = max(self._settings.min_similarity, float(similarity.max()) - 0.1)
        cited = sorted({self.sentences[i][0] for i in np.flatnonzero(similarity >= floor)})
        return CheckedSentence(sentence, citations=tuple(cited[:3]))

    def _judge_chinese(self, sentence: str) -> CheckedSentence:
        """Chinese (the bundled embeddings read English only): most of the sentence's character pairs must be in
        one passage, and its numbers in the passages."""
        missing = _numbers(sentence) - self._numbers - _numbers(self.question)
        if missing:
            return CheckedSentence(sentence, reason=f"the number {sorted(missing)[0]} is not in the documents")
        pairs = cjk_pairs(sentence)
        shares = [len(pairs & cjk_pairs(p)) / len(pairs) if pairs else 0.0 for p in self.passages]
        best = max(shares, default=0.0)
        if best < self._settings.min_chinese_overlap:
            return CheckedSentence(sentence, reason="no passage says this")
        cited = [n for n, share in enumerate(shares, start=1) if share >= best - 0.1]
        return CheckedSentence(sentence, citations=tuple(cited[:3]))

    def _problem(self, sentence: str, closest: list[str], similarity: float) -> str | None:
        """The first reason the sentence is not supported, or None. `closest`: the passage sentences nearest it."""
        customers_own = set() if _affirms(sentence) else _numbers(self.question)  # "bought on 10 December"
        missing_numbers = _numbers(sentence) - self._numbers - customers_own
        if missing_numbers:
            return f"the number {sorted(missing_numbers)[0]} is not in the documents"
        nearby_text = " ".join(closest)
        elsewhere = _numbers(sentence) - _numbers(nearby_text) - customers_own
        if elsewhere:  # "30 days" is in the documents, but not where they say what this sentence says
            return f"the documents do not give {sorted(elsewhere)[0]} for this"
        other_unit = _quantities(sentence) - _quantities(nearby_text) - _quantities(self.question)
        if other_unit:  # "24 hours" where the documents say "24 December"
            return f"the documents do not give {sorted(other_unit)[0][0]} with that unit for this"
        names = [w for w in _names(sentence) if stem(w) not in self._words]
        if names:
            return f"the documents do not mention '{names[0]}'"
        if _affirms(sentence):  # "yes" claims the question: its words must be where the answer comes from
            near = {stem(w) for s in closest for w in words(s)}
            unknown = [w for w in content_words(f"{self.question} {sentence}") if stem(w) not in near]
            if unknown:
                return f"the documents do not say that about '{unknown[0]}'"
        said = content_words(sentence)
        if said and len([w for w in said if stem(w) not in self._words]) / len(said) > self._settings.max_new_words:
            return "most of what it says is not in the documents"
        if similarity < self._settings.min_similarity:
            return "no passage says this"
        nearby_clauses = [c for s in closest for c in _passage_clauses(s)]
        return next((p for c in _clauses(sentence) if (p := self._polarity_problem(c, nearby_clauses))), None)

    def _polarity_problem(self, clause: str, near: list[str]) -> str | None:
        """A clause that restates a clause of the nearest passage sentences (the one sharing most of its words)
        must keep that clause's negations and conditions, and add none of its own."""
        clause = _LEADING_ANSWER.sub("", clause)  # "No, you do not need to": the "no" answers the question
        stems = {stem(w) for w in content_words(clause)}
        if len(stems) < 2 or not near:
            return None
        shared, source = max((len(stems & {stem(w) for w in content_words(c)}), c) for c in near)
        if shared / len(stems) < self._settings.restated_share:
            return None
        dropped = _cues(source) - _cues(clause)
        if dropped:
            return f"it leaves out the documents' '{sorted(dropped)[0]}'"
        added = _cues(clause) - _cues(source) - _cues(self.question)
        if added:
            return f"it says '{sorted(added)[0]}' where the documents do not"
        return None


def _clauses(sentence: str) -> list[str]:
    """The parts of a sentence that can each restate a different passage sentence."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(sentence)]
    return [p for p in parts if p] or [sentence]


def _passage_clauses(sentence: str) -> list[str]:
    """A passage sentence's clauses; a short lead-in before a colon ("What is not covered:") heads every item
    that follows it, so its negation stays with them."""
    head, colon, rest = sentence.partition(": ")
    if colon and len(words(head)) <= 5:
        return [f"{head}: {item}" for item in _clauses(rest)]
    if colon:
        return [*_clauses(head), *_clauses(rest)]
    return _clauses(sentence)


def _passage_sentences(passage: str) -> list[str]:
    """A passage's sentences; a line break inside a paragraph (wrapped text) does not end one. The heading line a
    chunk starts with ("Returns › Items that cannot be returned") is no sentence of its own: it heads the list
    items below it ("Items that cannot be returned: Gift cards"), so what they mean stays with them."""
    heading, body = _heading_and_body(passage)
    done, rest = split_sentences(_WRAPPED_LINE.sub(" ", body))
    sentences = [s for s in [*done, rest.strip()] if len(words(s)) >= 2 or _LIST_ITEM.match(s) or _han_count(s) >= 4]
    topic = heading.rsplit(" › ", 1)[-1].strip()
    return [f"{topic}: {_LIST_ITEM.sub('', s)}" if topic and _LIST_ITEM.match(s) else s for s in sentences]


def _heading_and_body(passage: str) -> tuple[str, str]:
    """A chunk's heading line (title › section, as ingest writes it, or a short line without a full stop) and
    the text under it."""
    first, newline, body = passage.strip().partition("\n")
    first = first.strip().lstrip("#").strip()
    if newline and body.strip() and (" › " in first or (len(words(first)) <= 8 and not _SENTENCE_END_AT.search(first))):
        return first, body
    return "", passage


def _han_count(text: str) -> int:
    return sum(len(run) for run in _CJK_RUN.findall(text))


def cjk_pairs(text: str) -> set[str]:
    """The Chinese character pairs of a text (traditional read as simplified), and its lone characters."""
    runs = _CJK_RUN.findall(simplified(text))
    return {run[i : i + 2] for run in runs for i in range(len(run) - 1)} | {run for run in runs if len(run) == 1}


def unit(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.maximum(np.linalg.norm(array, axis=1, keepdims=True), 1e-12)


def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def stem(word: str) -> str:
    word = word.lower().removesuffix("'s")
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in _STOPWORDS and w not in _CUES and len(w) >= 3]


def _names(sentence: str) -> list[str]:
    """Capitalised words not at a sentence's start: countries, products, plans."""
    words = _WORD.findall(sentence)
    return [w for w in words[1:] if w[0].isupper() and w.lower() not in _STOPWORDS and w != "I"]


def _numbers(text: str) -> set[str]:
    found = {n.rstrip(".,:").replace(",", "") for n in _NUMBER.findall(text)}
    chinese = {str(_chinese_number(run)) for run in _CHINESE_NUMBER.findall(text)}
    return found | chinese | {_NUMBER_WORDS[w] for w in words(text) if w in _NUMBER_WORDS}


_UNIT_NAMES = "second minute hour day week month year night time euro dollar pound percent % km mile kg gram litre"
_UNITS = frozenset(stem(form) for unit in _UNIT_NAMES.split(" ") for form in (unit, f"{unit}s"))


def _quantities(text: str) -> set[tuple[str, str]]:
    """Numbers with the unit that follows them: ("24", "hour"), ("15", "euro")."""
    found = _QUANTITY.findall(text.lower())
    return {(number.replace(",", ""), stem(unit)) for number, unit in found if stem(unit) in _UNITS}


def _chinese_number(run: str) -> int:
    """三十 → 30, 四十八 → 48, 两 → 2, 一百 → 100 (what customer-service text uses)."""
    total, digit = 0, 0
    for char in run:
        if char in _CHINESE_UNITS:
            total += (digit or 1) * _CHINESE_UNITS[char]
            digit = 0
        else:
            digit = _CHINESE_DIGITS[char]
    return total + digit


def _cues(text: str) -> set[str]:
    return {w for w in words(text) if w in _CUES or w.endswith("n't")}


def _affirms(sentence: str) -> bool:
    """A sentence that answers a yes/no question with yes: it claims whatever the question asked."""
    first = " ".join(words(sentence)[:2])
    return first.split(" ")[0] in _AFFIRMATIONS or first in _AFFIRMATIONS
