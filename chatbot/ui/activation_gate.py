"""The evaluation gate in the Prompts tab: activating a version first answers the knowledge base's test set with it
and with the active version (a progress bar; Cancel stops the run), shows both scores, and blocks a version that
does worse than the margin allows until the admin gives a reason, which is recorded with the activation."""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr

from chatbot.insights.evaluation_gate import EvaluationGate, GateBlockedError, GateResult
from chatbot.ui.rendering import admin_name, escape_markdown
from knowledge.errors import RagdeskError

RESULT_COLUMNS = ["Question", "Expected", "This version", "Score", "Active version", "Score "]


class GateControls:
    def __init__(self, gate: EvaluationGate) -> None:
        self.gate = gate
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def render(self) -> dict[str, Any]:
        c: dict[str, Any] = {}
        with gr.Group(elem_id="gate"):
            c["gate_message"] = gr.Markdown(elem_id="gate-message")
            c["gate_cancel"] = gr.Button("Cancel the test run", size="sm", elem_id="gate-cancel")
            c["gate_table"] = gr.Dataframe(
                headers=RESULT_COLUMNS, interactive=False, wrap=True, visible=False, elem_id="gate-table"
            )
            with gr.Row(visible=False, equal_height=True) as override:
                c["gate_reason"] = gr.Textbox(label="Reason to activate it anyway (recorded)", elem_id="gate-reason")
                c["gate_override"] = gr.Button("Activate anyway", variant="stop", elem_id="gate-override", scale=0)
            c["gate_override_row"] = override
        c["gate_result"] = gr.State(None)
        c["gate_cancel"].click(self._on_cancel, None, [c["gate_message"]], queue=False)
        return c

    def outputs(self, c: dict[str, Any]) -> list[Any]:
        return [c["gate_message"], c["gate_table"], c["gate_override_row"], c["gate_reason"], c["gate_result"]]

    def run(self, kb: str, version: int, request: gr.Request, progress: gr.Progress) -> tuple[Any, ...]:
        """Test, then activate unless blocked: (message, table, override row, reason, result)."""
        cancel = self._cancel_event(request)
        try:
            result = self.gate.evaluate(
                kb, version, progress=lambda done, total: progress((done, total), unit="answers"), cancel=cancel
            )
            if result is not None and result.blocked:
                return _blocked(result)
            activated = self.gate.activate(kb, version, result, by=admin_name(request))
        except RagdeskError as e:
            return f"**{escape_markdown(str(e))}**", gr.skip(), gr.Row(visible=False), "", None
        finally:
            self._forget(request)
        tested = result.verdict() if result else "No test set for this knowledge base: activated untested."
        return (
            f"Active now: **{escape_markdown(activated.label)}**. {escape_markdown(tested)}",
            _table(result),
            gr.Row(visible=False),
            "",
            None,
        )

    def override(self, kb: str, result: GateResult | None, reason: str, request: gr.Request) -> tuple[Any, ...]:
        if result is None:
            return "Run the test again: there is no blocked result to override.", gr.skip(), gr.skip(), gr.skip(), None
        try:
            activated = self.gate.activate(kb, result.version, result, by=admin_name(request), reason=reason)
        except GateBlockedError as e:
            return f"**{escape_markdown(str(e))}**", gr.skip(), gr.skip(), gr.skip(), result
        note = f"Active now: **{escape_markdown(activated.label)}**, despite the test; the reason is recorded."
        return note, gr.skip(), gr.Row(visible=False), "", None

    def record(self, kb: str) -> str:
        """The knowledge base's activations, newest first, with their scores and reasons."""
        lines = []
        for a in self.gate.activations(kb)[:20]:
            scores = "untested"
            if a.score is not None:
                scores = f"{a.score:.2f} vs {a.replaced_score:.2f} on {a.questions} questions"
            why = f" · overridden: “{escape_markdown(a.reason)}”" if a.overridden else ""
            who = escape_markdown(a.activated_by)
            lines.append(f"- {a.activated_at:%Y-%m-%d %H:%M} v{a.version} (was v{a.replaced}) by {who}: {scores}{why}")
        return "\n".join(lines) or "No activation recorded yet."

    def _cancel_event(self, request: gr.Request) -> threading.Event:
        with self._lock:
            event = self._cancels[request.session_hash or ""] = threading.Event()
            return event

    def _forget(self, request: gr.Request) -> None:
        with self._lock:
            self._cancels.pop(request.session_hash or "", None)

    def _on_cancel(self, request: gr.Request) -> str:
        with self._lock:
            event = self._cancels.get(request.session_hash or "")
        if event is None:
            return "No test is running."
        event.set()
        return "Cancelling after the current answer…"


def _blocked(result: GateResult) -> tuple[Any, ...]:
    message = (
        f"**Not activated:** {escape_markdown(result.verdict())} Look at the answers below; to activate it anyway, "
        "give a reason."
    )
    return message, _table(result), gr.Row(visible=True), "", result


def _table(result: GateResult | None) -> Any:
    if result is None:
        return gr.Dataframe(visible=False)
    rows = [
        [
            new.case.question,
            "(should refuse)" if new.case.should_refuse else new.case.expected,
            new.answer if new.answered else "(handed off)",
            round(new.score, 2),
            old.answer if old.answered else "(handed off)",
            round(old.score, 2),
        ]
        for new, old in zip(result.candidate, result.active, strict=True)
    ]
    return gr.Dataframe(value=rows, visible=True)
