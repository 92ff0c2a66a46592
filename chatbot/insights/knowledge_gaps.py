"""Knowledge gaps: the questions customers asked that the knowledge base could not answer (handed off, refused by
the grounding check, or thumbed down), grouped by meaning into topics. Questions are embedded with the knowledge
base's embedding model (once: see question_vectors) and grouped by agglomerative clustering (average linkage on
cosine distance, cut at a distance), per knowledge base; a question an approved FAQ entry answers is no longer a
gap."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from chatbot.conversation.answer_log import AnswerLogRow
from chatbot.insights.faq import FaqQuestionRow
from chatbot.insights.question_vectors import QuestionVectors
from chatbot.settings import InsightsSettings

EXAMPLES_SHOWN = 5


@dataclass(frozen=True)
class GapQuestion:
    message_id: int
    kb: str
    question: str
    asked_at: datetime
    why: str  # handed off | refused by the check | thumbs down


@dataclass(frozen=True)
class Topic:
    kb: str
    questions: list[GapQuestion]  # every time it was asked, most central first
    representative: str  # the question nearest the topic's centre

    @property
    def key(self) -> str:
        """Stable while the topic keeps its oldest question: the knowledge base and that question's id."""
        return f"{self.kb}:{min(q.message_id for q in self.questions)}"

    @property
    def size(self) -> int:
        return len(self.questions)

    @property
    def examples(self) -> list[str]:
        """Distinct wordings, most central first."""
        return list(dict.fromkeys(q.question for q in self.questions))[:EXAMPLES_SHOWN]

    @property
    def first_seen(self) -> datetime:
        return min(q.asked_at for q in self.questions)

    @property
    def last_seen(self) -> datetime:
        return max(q.asked_at for q in self.questions)

    @property
    def reasons(self) -> Counter[str]:
        return Counter(q.why for q in self.questions)


def group_by_meaning(vectors: np.ndarray, distance: float) -> list[int]:
    """A label per row: rows join while the average cosine distance between their groups stays under `distance`."""
    if len(vectors) < 2:
        return [0] * len(vectors)
    clustering = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance
    )
    return [int(label) for label in clustering.fit_predict(vectors)]


class KnowledgeGaps:
    def __init__(self, sessions: sessionmaker[Session], vectors: QuestionVectors, settings: InsightsSettings) -> None:
        self._sessions = sessions
        self._vectors = vectors
        self._settings = settings

    def questions(self, kb: str | None = None) -> list[GapQuestion]:
        """The newest unanswered questions (at most max_gap_questions) no approved FAQ entry answers yet."""
        log = AnswerLogRow
        unanswered = or_(log.handed_off.is_(True), log.rating == "down")
        covered = select(FaqQuestionRow.message_id)
        stmt = (
            select(log.message_id, log.kb, log.question, log.created_at, log.handed_off, log.refused_by_check)
            .where(unanswered, log.message_id.not_in(covered), log.question != "")
            .order_by(log.created_at.desc())
            .limit(self._settings.max_gap_questions)
        )
        if kb:
            stmt = stmt.where(log.kb == kb)
        with self._sessions() as s:
            rows = s.execute(stmt).all()
        return [GapQuestion(m, k, q, at, _why(handed, refused)) for m, k, q, at, handed, refused in rows]

    def topics(self, kb: str | None = None) -> list[Topic]:
        """Topics, largest first (then the most recently asked)."""
        by_kb: dict[str, list[GapQuestion]] = {}
        for question in self.questions(kb):
            by_kb.setdefault(question.kb, []).append(question)
        topics = [topic for questions in by_kb.values() for topic in self._grouped(questions)]
        return sorted(topics, key=lambda t: (-t.size, -t.last_seen.timestamp()))

    def _grouped(self, questions: list[GapQuestion]) -> list[Topic]:
        """Each wording clustered once (the same words asked twice are one point, counted twice)."""
        vectors = self._vectors.unit_vectors([(q.message_id, " ".join(q.question.split())) for q in questions])
        first_of: dict[str, int] = {}
        for n, question in enumerate(questions):
            first_of.setdefault(" ".join(question.question.split()), n)
        wordings = list(first_of)
        labels = group_by_meaning(vectors[[first_of[w] for w in wordings]], self._settings.topic_distance)
        label_of = dict(zip(wordings, labels, strict=True))
        members: dict[int, list[int]] = {}
        for n, question in enumerate(questions):
            members.setdefault(label_of[" ".join(question.question.split())], []).append(n)
        return [_topic([questions[n] for n in rows], vectors[rows]) for rows in members.values()]


def _topic(group: list[GapQuestion], vectors: np.ndarray) -> Topic:
    """Its questions, most central first (nearest the mean of their vectors)."""
    closeness = vectors @ vectors.mean(axis=0)
    ordered = [group[n] for n in np.argsort(-closeness, kind="stable")]
    return Topic(group[0].kb, ordered, ordered[0].question)


def _why(handed_off: bool, refused_by_check: bool) -> str:
    if refused_by_check:
        return "refused by the check"
    return "handed off" if handed_off else "thumbs down"
