"""The embedding of each unanswered question, computed the first time the knowledge gaps are grouped and kept, so
the Insights tab embeds only the questions asked since it was last opened (not thousands on every visit)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings
from sqlalchemy import ForeignKey, LargeBinary, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from knowledge.database import Base

IDS_PER_QUERY = 500  # well under SQLite's limit of bound parameters


class QuestionVectorRow(Base):
    __tablename__ = "question_vectors"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(300))  # which embedding model made it: another one makes it anew
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, unit length


class QuestionVectors:
    def __init__(self, sessions: sessionmaker[Session], embeddings: Embeddings, model: str) -> None:
        self._sessions = sessions
        self._embeddings = embeddings
        self._model = model

    def unit_vectors(self, questions: Sequence[tuple[int, str]]) -> np.ndarray:
        """A unit vector per (message id, question), in order: kept ones read, the others embedded and kept."""
        known = self._stored([m for m, _ in questions])
        missing = [(m, q) for m, q in questions if m not in known]
        if missing:
            texts = list(dict.fromkeys(q for _, q in missing))
            made = dict(zip(texts, unit_rows(self._embeddings.embed_documents(texts)), strict=True))
            fresh = {m: made[q] for m, q in missing}
            self._keep(fresh)
            known.update(fresh)
        if not questions:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[m] for m, _ in questions])

    def _stored(self, ids: list[int]) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        with self._sessions() as s:
            for start in range(0, len(ids), IDS_PER_QUERY):
                part = ids[start : start + IDS_PER_QUERY]
                rows = s.execute(
                    select(QuestionVectorRow.message_id, QuestionVectorRow.vector).where(
                        QuestionVectorRow.message_id.in_(part), QuestionVectorRow.model == self._model
                    )
                )
                found.update((m, np.frombuffer(v, dtype=np.float32)) for m, v in rows)
        return found

    def _keep(self, vectors: dict[int, np.ndarray]) -> None:
        """Kept for next time; another admin keeping the same ones at once is fine (theirs stay)."""
        ids = list(vectors)
        try:
            with self._sessions.begin() as s:
                for start in range(0, len(ids), IDS_PER_QUERY):
                    s.execute(
                        delete(QuestionVectorRow).where(
                            QuestionVectorRow.message_id.in_(ids[start : start + IDS_PER_QUERY])
                        )
                    )
                s.add_all(
                    QuestionVectorRow(message_id=m, model=self._model, vector=v.astype(np.float32).tobytes())
                    for m, v in vectors.items()
                )
        except IntegrityError:
            pass


def unit_rows(vectors: Sequence[Sequence[float]]) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
