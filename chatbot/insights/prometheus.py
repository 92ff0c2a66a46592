"""The support metrics on /metrics: every knowledge base's all-time figures from the database (so every replica
reports the same numbers), read at most every CACHE_S seconds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from chatbot.insights.support_metrics import DayFigures, SupportMetrics

CACHE_S = 30.0


class SupportCollector(Collector):
    def __init__(self, metrics: SupportMetrics) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()
        self._read_at, self._totals = 0.0, dict[str, DayFigures]()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        totals = self._fresh()
        families = {
            "questions": GaugeMetricFamily(
                "ragdesk_support_questions", "Questions asked, by knowledge base and outcome.", labels=["kb", "outcome"]
            ),
            "feedback": GaugeMetricFamily(
                "ragdesk_support_feedback", "Answers' latest thumbs, by knowledge base.", labels=["kb", "rating"]
            ),
            "grounding": GaugeMetricFamily(
                "ragdesk_support_grounding",
                "Answers the grounding check refused (handoff) or trimmed, by knowledge base.",
                labels=["kb", "action"],
            ),
            "conversations": GaugeMetricFamily(
                "ragdesk_support_conversations",
                "Conversations, and those deflected (no handoff, no thumbs down), by knowledge base.",
                labels=["kb", "kind"],
            ),
        }
        for kb, f in totals.items():
            families["questions"].add_metric([kb, "answered"], f.answered)
            families["questions"].add_metric([kb, "handed_off"], f.handed_off)
            families["feedback"].add_metric([kb, "up"], f.thumbs_up)
            families["feedback"].add_metric([kb, "down"], f.thumbs_down)
            families["grounding"].add_metric([kb, "refused"], f.refused_by_check)
            families["grounding"].add_metric([kb, "trimmed"], f.trimmed)
            families["conversations"].add_metric([kb, "all"], f.conversations)
            families["conversations"].add_metric([kb, "deflected"], f.deflected)
        yield from families.values()

    def _fresh(self) -> dict[str, DayFigures]:
        with self._lock:
            if time.monotonic() - self._read_at > CACHE_S:
                self._totals, self._read_at = self._metrics.totals_by_kb(), time.monotonic()
            return self._totals
