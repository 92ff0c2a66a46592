"""The Insights tab's support metrics: a period and a knowledge base in, plots per day and a CSV of the same
numbers out. One SupportMetrics.report per view; the plots are drawn from its rows."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from chatbot.insights.support_metrics import DayFigures, MetricsQuery, MetricsReport, SupportMetrics
from chatbot.ui.conversations_tab import ALL_KBS, day_from_text
from knowledge.errors import RagdeskError

DEFAULT_DAYS = 30
NOTHING_YET = "**Nothing yet:** no question was asked in this period{kb}. The plots fill in as customers ask."


class MetricsPanel:
    def __init__(self, metrics: SupportMetrics, kb_names: Any) -> None:
        self.metrics = metrics
        self.kb_names = kb_names  # () -> the knowledge bases' names
        self._csv_dir = Path(tempfile.mkdtemp(prefix="ragdesk-metrics-"))

    def render(self) -> tuple[list[Any], list[Any]]:
        """The inputs and outputs of a refresh (the tab's select shows the last 30 days)."""
        with gr.Row(equal_height=True):
            kb = gr.Dropdown(label="Knowledge base", choices=[ALL_KBS], value=ALL_KBS, elem_id="metrics-kb")
            since = gr.Textbox(label="From (YYYY-MM-DD)", elem_id="metrics-from")
            until = gr.Textbox(label="To (YYYY-MM-DD)", elem_id="metrics-to")
            show = gr.Button("Show", variant="primary", elem_id="metrics-show", scale=0)
        summary = gr.Markdown(elem_id="metrics-summary")
        with gr.Row():
            volume = gr.LinePlot(x="day", y="count", color="series", title="Questions per day", elem_id="plot-volume")
            shares = gr.ScatterPlot(x="day", y="share", color="series", title="Shares per day", elem_id="plot-shares")
        with gr.Row():
            thumbs = gr.BarPlot(
                x="day", y="count", color="series", title="Feedback and the grounding check", elem_id="plot-thumbs"
            )
            speed = gr.ScatterPlot(
                x="day", y="seconds", color="series", title="Time to first token", elem_id="plot-ttft"
            )
        download = gr.DownloadButton("Download CSV", visible=False, elem_id="metrics-csv")
        inputs, outputs = [kb, since, until], [kb, since, until, summary, volume, shares, thumbs, speed, download]
        show.click(self.show, inputs, outputs)
        return inputs, outputs

    def show(self, kb: str | None, since: str | None, until: str | None) -> tuple[Any, ...]:
        kb_choices = gr.Dropdown(choices=[ALL_KBS, *self.kb_names()], value=kb or ALL_KBS)
        try:
            query = metrics_query(kb, since, until)
            report = self.metrics.report(query)
        except RagdeskError as e:
            return kb_choices, gr.skip(), gr.skip(), str(e), *([gr.skip()] * 5)
        dates = (query.date_from.isoformat(), query.date_to.isoformat())  # type: ignore[union-attr]
        plots = plot_frames(report)
        csv = self._csv_file(report) if not report.empty else None
        return kb_choices, *dates, summary(report), *plots, gr.DownloadButton(value=csv, visible=csv is not None)

    def _csv_file(self, report: MetricsReport) -> str:
        q = report.query
        path = self._csv_dir / f"ragdesk-metrics-{q.kb or 'all'}-{q.date_from}-{q.date_to}.csv".replace("/", "_")
        path.write_text(report.csv(), encoding="utf-8")
        return str(path)


class MetricsQueryError(RagdeskError):
    """A period the metrics cannot show."""


def metrics_query(kb: str | None, since: str | None, until: str | None, today: date | None = None) -> MetricsQuery:
    """The period asked for, the last 30 days by default (UTC days, both ends included)."""
    today = today or datetime.now(UTC).date()
    try:
        last = day_from_text(until, "To") or today
        first = day_from_text(since, "From") or last - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError as e:
        raise MetricsQueryError(str(e)) from None
    if first > last:
        raise MetricsQueryError(f"The period starts ({first}) after it ends ({last}).")
    if (last - first).days > 3660:
        raise MetricsQueryError("A period is at most ten years.")
    return MetricsQuery(None if kb in (None, "", ALL_KBS) else kb, first, last)


def summary(report: MetricsReport) -> str:
    q, t = report.query, report.total
    where = f" in '{q.kb}'" if q.kb else ""
    if report.empty:
        return NOTHING_YET.format(kb=where)
    ttft = f"{t.ttft_p50_s:.2f} s / {t.ttft_p95_s:.2f} s" if t.ttft_p50_s is not None else "no answer generated"
    return (
        f"**{q.date_from} to {q.date_to}{where}:** {t.questions:,} questions in {t.conversations:,} conversations · "
        f"answered {t.answered_share:.0%} · handed off {t.handed_off_share:.0%} "
        f"(the grounding check refused {t.refused_by_check:,}, trimmed {t.trimmed:,}) · "
        f"deflection {t.deflection:.0%} · thumbs up {t.thumbs_up:,}, down {t.thumbs_down:,} · "
        f"time to first token p50 / p95: {ttft}"
    )


def plot_frames(report: MetricsReport) -> tuple[pd.DataFrame, ...]:
    """Long-format frames (day, value, series) for the four plots."""
    days = report.days

    def frame(column: str, series: dict[str, Any]) -> pd.DataFrame:
        rows = [
            {"day": pd.Timestamp(d.day), column: value(d), "series": name}
            for name, value in series.items()
            for d in days
            if value(d) is not None
        ]
        return pd.DataFrame(rows, columns=["day", column, "series"])

    return (
        frame("count", {"asked": _get("questions"), "answered": _get("answered"), "handed off": _get("handed_off")}),
        frame(
            "share",
            {
                "answered": lambda d: round(d.answered_share, 4) if d.questions else None,  # no share without questions
                "deflection": lambda d: round(d.deflection, 4) if d.conversations else None,
            },
        ),
        frame(
            "count",
            {
                "thumbs up": _get("thumbs_up"),
                "thumbs down": _get("thumbs_down"),
                "refused by check": _get("refused_by_check"),
                "trimmed by check": _get("trimmed"),
            },
        ),
        frame("seconds", {"p50": _get("ttft_p50_s"), "p95": _get("ttft_p95_s")}),
    )


def _get(name: str) -> Any:
    def value(figures: DayFigures) -> Any:
        return getattr(figures, name)

    return value
