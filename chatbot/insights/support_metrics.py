"""Support metrics per UTC day over a period and knowledge base: questions, answered and handed-off shares,
deflection, thumbs, the grounding check's refusals and trims, time to first token. Counted in SQL by two grouped
queries over covering indexes (the answer log's and the conversation outcomes'), never by reading every turn into
Python; a conversation counts on the day of its first answer."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import astuple, dataclass, fields
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from chatbot.conversation.answer_log import AnswerLogRow, ConversationOutcomeRow, bucket_seconds

MAX_DAYS = 3660  # a period is at most ten years of rows in the table and the plots
L, C = AnswerLogRow, ConversationOutcomeRow


@dataclass(frozen=True)
class MetricsQuery:
    kb: str | None = None  # None: every knowledge base
    date_from: date | None = None
    date_to: date | None = None  # inclusive


@dataclass(frozen=True)
class DayFigures:
    day: date | None  # None: the whole period
    questions: int
    answered: int
    handed_off: int
    refused_by_check: int
    trimmed: int
    thumbs_up: int
    thumbs_down: int
    conversations: int
    deflected: int  # conversations without a handoff and without a thumbs down
    ttft_p50_s: float | None
    ttft_p95_s: float | None

    @property
    def answered_share(self) -> float:
        return self.answered / self.questions if self.questions else 0.0

    @property
    def handed_off_share(self) -> float:
        return self.handed_off / self.questions if self.questions else 0.0

    @property
    def deflection(self) -> float:
        return self.deflected / self.conversations if self.conversations else 0.0


@dataclass(frozen=True)
class MetricsReport:
    query: MetricsQuery
    days: list[DayFigures]  # every day of the period, days without questions as zeros
    total: DayFigures

    @property
    def empty(self) -> bool:
        return self.total.questions == 0

    def csv(self) -> str:
        """The same numbers as the plots: a row per day, then the period's total (day "total")."""
        out = io.StringIO()
        writer = csv.writer(out)
        names = [f.name for f in fields(DayFigures)]
        writer.writerow([*names, "answered_share", "handed_off_share", "deflection"])
        for figures in [*self.days, self.total]:
            row = ["total" if figures.day is None else figures.day.isoformat(), *astuple(figures)[1:]]
            shares = (figures.answered_share, figures.handed_off_share, figures.deflection)
            writer.writerow([_cell(v) for v in row] + [f"{v:.4f}" for v in shares])
        return out.getvalue()


class SupportMetrics:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def report(self, query: MetricsQuery) -> MetricsReport:
        with self._sessions() as s:
            counted = s.execute(_daily_counts(_filters(query))).all()
            conversations = {_as_date(row[0]): row[1:] for row in s.execute(_daily_conversations(query))}
        counts: dict[date, list[int]] = {}
        buckets: dict[date, Counter[int]] = {}
        for day, bucket, *numbers in counted:  # a row per day and time-to-first-token bucket
            day = _as_date(day)
            sums = counts.setdefault(day, [0] * len(numbers))
            counts[day] = [a + int(b or 0) for a, b in zip(sums, numbers, strict=True)]
            if bucket is not None:
                buckets.setdefault(day, Counter())[bucket] += int(numbers[0])
        days = [_figures(d, counts.get(d), conversations.get(d), buckets.get(d)) for d in _period(query, counts)]
        return MetricsReport(query, days, _total(days, buckets))

    def totals_by_kb(self) -> dict[str, DayFigures]:
        """Every knowledge base's all-time figures (for /metrics)."""
        with self._sessions() as s:
            kbs = list(s.scalars(select(L.kb).distinct()))
        return {kb: self.report(MetricsQuery(kb=kb)).total for kb in kbs}


def _filters(query: MetricsQuery, kb: Any = L.kb, day: Any = L.day) -> list[ColumnElement[bool]]:
    """The query's knowledge base and period on a table's kb and day columns (the answer log's by default)."""
    filters: list[ColumnElement[bool]] = []
    if query.kb:
        filters.append(kb == query.kb)
    if query.date_from:
        filters.append(day >= query.date_from)
    if query.date_to:
        filters.append(day <= query.date_to)
    return filters


def _count(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _daily_counts(filters: list[ColumnElement[bool]]) -> Any:
    """Per day and time-to-first-token bucket (the covering index's order: no sort, no table row read)."""
    return (
        select(
            L.day,
            L.first_token_bucket,
            func.count(),
            _count(L.handed_off.is_(True)),
            _count(L.refused_by_check.is_(True)),
            _count(L.trimmed.is_(True)),
            _count(L.rating == "up"),
            _count(L.rating == "down"),
        )
        .where(*filters)
        .group_by(L.day, L.first_token_bucket)
    )


def _daily_conversations(query: MetricsQuery) -> Any:
    """Conversations by the day of their first answer, and how many were deflected."""
    filters = _filters(query, C.kb, C.first_day)
    deflected = _count(and_(C.handed_off.is_(False), C.disliked.is_(False)))
    return select(C.first_day, func.count(), deflected).where(*filters).group_by(C.first_day)


def _period(query: MetricsQuery, counts: dict[date, Any]) -> list[date]:
    """Every day from the query's first (or the first with questions) to its last (or the last with questions)."""
    if not counts and not (query.date_from and query.date_to):
        return []
    first = query.date_from or min(counts)
    last = query.date_to or max(counts)
    span = min((last - first).days, MAX_DAYS)
    return [first + timedelta(days=n) for n in range(span + 1)]


def _figures(day: date | None, counts: Any, conversations: Any, buckets: Counter[int] | None) -> DayFigures:
    questions, handed_off, refused, trimmed, up, down = (int(v or 0) for v in counts or (0,) * 6)
    started, deflected = (int(v or 0) for v in conversations or (0, 0))
    p50, p95 = (_percentile(buckets, q) for q in (0.5, 0.95)) if buckets else (None, None)
    return DayFigures(
        day, questions, questions - handed_off, handed_off, refused, trimmed, up, down, started, deflected, p50, p95
    )


def _total(days: list[DayFigures], buckets: dict[date, Counter[int]]) -> DayFigures:
    merged: Counter[int] = Counter()
    for day in days:
        merged.update(buckets.get(day.day, Counter()))  # type: ignore[arg-type]
    sums = {f.name: sum(getattr(d, f.name) for d in days) for f in fields(DayFigures)[1:10]}
    p50, p95 = (_percentile(merged, q) for q in (0.5, 0.95)) if merged else (None, None)
    return DayFigures(day=None, ttft_p50_s=p50, ttft_p95_s=p95, **sums)


def _percentile(buckets: Counter[int], q: float) -> float | None:
    """The q-quantile read from bucket counts (nearest rank), as the bucket's seconds."""
    n = sum(buckets.values())
    if not n:
        return None
    rank, seen = max(1, round(q * n)), 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return round(bucket_seconds(bucket), 3)
    return None


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _cell(value: Any) -> Any:
    return "" if value is None else value
