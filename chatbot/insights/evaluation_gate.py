"""The evaluation gate: before a template version goes live, the knowledge base's test set is answered with it
and with the active version, each answer scored the way bench/answers.py scores (token F1 or "contains" against
the expected answer, or whether it refused). A version scoring lower than the active one by more than the margin
is activated only with a reason, which is recorded with the activation."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from chatbot.conversation.drafts import DraftBench
from chatbot.conversation.language import CHINESE, detect_language
from chatbot.conversation.template_store import TemplateStore, TemplateVersion
from chatbot.insights.answer_scoring import reference_match
from chatbot.insights.evaluation_sets import EvalCase, EvaluationSets
from knowledge.database import Base, utcnow
from knowledge.errors import RagdeskError
from knowledge.registry import kb_reference

Progress = Callable[[int, int], None]  # (questions done, questions in all)


class GateBlockedError(RagdeskError):
    """The version scored worse than the active one by more than the margin, and no reason was given."""


class GateCancelledError(RagdeskError):
    """The admin cancelled the test run; nothing was activated."""


class ActivationRow(Base):
    __tablename__ = "template_activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kb: Mapped[str] = mapped_column(String(100), kb_reference(), index=True)
    version: Mapped[int] = mapped_column(Integer)
    replaced: Mapped[int] = mapped_column(Integer)  # the version that was active before
    score: Mapped[float | None] = mapped_column(Float)  # None: no test set, the gate did not run
    replaced_score: Mapped[float | None] = mapped_column(Float)
    questions: Mapped[int] = mapped_column(Integer, default=0)
    overridden: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    activated_by: Mapped[str] = mapped_column(String(200))
    activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class CaseResult:
    case: EvalCase
    answer: str
    answered: bool
    score: float


@dataclass(frozen=True)
class GateResult:
    kb: str
    version: int  # the candidate
    active_version: int
    candidate: list[CaseResult]
    active: list[CaseResult]
    margin: float

    @property
    def score(self) -> float:
        return statistics.fmean(r.score for r in self.candidate) if self.candidate else 0.0

    @property
    def active_score(self) -> float:
        return statistics.fmean(r.score for r in self.active) if self.active else 0.0

    @property
    def blocked(self) -> bool:
        return self.score < self.active_score - self.margin

    def verdict(self) -> str:
        change = "worse than" if self.blocked else "not worse than"
        return (
            f"v{self.version} scored {self.score:.2f} on {len(self.candidate)} test questions; the active "
            f"v{self.active_version} scored {self.active_score:.2f}: {change} the active version by more than "
            f"the margin ({self.margin:.2f})."
        )


@dataclass(frozen=True)
class Activation:
    kb: str
    version: int
    replaced: int
    score: float | None
    replaced_score: float | None
    questions: int
    overridden: bool
    reason: str
    activated_by: str
    activated_at: datetime


def score_answer(case: EvalCase, answer: str, answered: bool) -> float:
    """1 for a refusal the case expects; for an expected answer, 1 when the reply contains it, else its F1."""
    if case.should_refuse:
        return 0.0 if answered else 1.0
    if not answered:
        return 0.0
    f1, contains = reference_match(answer, [case.expected], chinese=detect_language(case.question) == CHINESE)
    return 1.0 if contains else f1


class EvaluationGate:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        drafts: DraftBench,
        templates: TemplateStore,
        sets: EvaluationSets,
        margin: float,
    ) -> None:
        self._sessions = sessions
        self._drafts = drafts
        self._templates = templates
        self.sets = sets
        self.margin = margin

    def evaluate(
        self, kb: str, version: int, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> GateResult | None:
        """Answer the test set with `version` and with the active version; None when the set is empty."""
        cases = self.sets.cases(kb)
        if not cases:
            return None
        candidate, active = self._templates.get(kb, version), self._templates.active(kb)
        results: dict[int, list[CaseResult]] = {candidate.version: [], active.version: []}
        versions = [candidate] if candidate.version == active.version else [candidate, active]
        total, done = len(cases) * len(versions), 0
        for case in cases:
            for template in versions:
                if cancel is not None and cancel.is_set():
                    raise GateCancelledError(f"Cancelled after {done} of {total} answers; nothing was activated.")
                results[template.version].append(self._answer(kb, template, case))
                done += 1
                if progress:
                    progress(done, total)
        return GateResult(kb, version, active.version, results[version], results[active.version], self.margin)

    def _answer(self, kb: str, version: TemplateVersion, case: EvalCase) -> CaseResult:
        trial = self._drafts.try_template(kb, version.template, case.question)
        return CaseResult(case, trial.answer, trial.answered, score_answer(case, trial.answer, trial.answered))

    def activate(self, kb: str, version: int, result: GateResult | None, by: str, reason: str = "") -> TemplateVersion:
        """Activate after the gate: `result` is evaluate's for this version (None: no test set); a blocked
        result needs a reason."""
        active = self._templates.active(kb)
        if result is not None and (result.version != version or result.active_version != active.version):
            raise GateBlockedError("The versions changed since the test ran; run the test again.")
        if result is None and self.sets.count(kb):
            raise GateBlockedError("Run the test set before activating this version.")
        overridden = bool(result and result.blocked)
        if overridden and not reason.strip():
            raise GateBlockedError(f"Not activated: {result.verdict()} Give a reason to activate it anyway.")  # type: ignore[union-attr]
        activated = self._templates.activate(kb, version)
        with self._sessions.begin() as s:
            s.add(
                ActivationRow(
                    kb=kb,
                    version=version,
                    replaced=active.version,
                    score=result.score if result else None,
                    replaced_score=result.active_score if result else None,
                    questions=len(result.candidate) if result else 0,
                    overridden=overridden,
                    reason=reason.strip()[:2000],
                    activated_by=by[:200],
                )
            )
        return activated

    def activations(self, kb: str) -> list[Activation]:
        """Newest first: who activated which version, with what scores and why."""
        with self._sessions() as s:
            rows = s.scalars(
                select(ActivationRow).where(ActivationRow.kb == kb).order_by(ActivationRow.id.desc())
            ).all()
            return [
                Activation(
                    r.kb,
                    r.version,
                    r.replaced,
                    r.score,
                    r.replaced_score,
                    r.questions,
                    r.overridden,
                    r.reason,
                    r.activated_by,
                    r.activated_at,
                )
                for r in rows
            ]
