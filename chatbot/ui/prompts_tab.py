"""The Prompts tab (admin): edit a knowledge base's assistant template, check it, preview it, try it against
the active version, save versions, activate, roll back and compare."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from chatbot.conversation.drafts import DraftBench
from chatbot.conversation.service import ChatService
from chatbot.conversation.template_advice import template_advice, unfollowed
from chatbot.conversation.template_store import TemplateStore
from chatbot.conversation.templates import (
    DEFAULTS,
    AssistantTemplate,
    parse_template,
    template_problems,
)
from chatbot.errors import InvalidTemplateError, RagdeskError
from chatbot.insights.evaluation_gate import EvaluationGate
from chatbot.ui.activation_gate import GateControls
from chatbot.ui.examples_form import ExamplesForm
from chatbot.ui.rendering import escape_markdown, render_answer

logger = logging.getLogger(__name__)
GATE_PROGRESS = gr.Progress()  # Gradio fills in a handler's progress bar through a default of this type

SAMPLE_QUESTION = "How long do I have to return an item?"


def template_from_form(
    system_prompt: str,
    examples: list[list[Any]] | None,
    chain_of_thought: bool,
    no_answer_reply: str,
    k: float,
    threshold: float,
    temperature: float,
    max_new_tokens: float,
    grounding_policy: str = "trim",
    quote_lead: str = "",
    closing_line: str = "",
) -> AssistantTemplate:
    rows = [[str(cell or "") for cell in row] + ["", "", ""] for row in (examples or [])]
    return parse_template(
        {
            "system_prompt": system_prompt,
            "examples": [
                {"question": q, "answer": a, "reasoning": r} for q, a, r, *_ in rows if q.strip() or a.strip()
            ],
            "chain_of_thought": chain_of_thought,
            "no_answer_reply": no_answer_reply,
            "k": int(k or 0),
            "relevance_threshold": threshold,
            "temperature": temperature,
            "max_new_tokens": int(max_new_tokens or 0),  # an emptied field is reported as too small
            "grounding_policy": grounding_policy,
            "quote_lead": quote_lead,
            "closing_line": closing_line,
        }
    )


def form_from_template(template: AssistantTemplate) -> tuple[Any, ...]:
    return (
        template.system_prompt,
        [[e.question, e.answer, e.reasoning] for e in template.examples],
        template.chain_of_thought,
        template.no_answer_reply,
        template.k,
        template.relevance_threshold,
        template.temperature,
        template.max_new_tokens,
        template.grounding_policy,
        template.quote_lead,
        template.closing_line,
    )


class PromptsTab:
    """Handed the template store (versions), the draft bench (try, preview, budget) and the chat service (which
    knowledge bases there are)."""

    def __init__(self, templates: TemplateStore, drafts: DraftBench, chat: ChatService, gate: EvaluationGate) -> None:
        self.store = templates
        self.drafts = drafts
        self.chat = chat
        self.gate = GateControls(gate)

    def render(self, tab: gr.Tab) -> None:
        c = {**_picker(), **_template_form(), **_trials()}
        c.update(self.gate.render())  # under Save and activate: the gate's verdict shows where it was asked for
        c.update(_trial_answers())
        c.update(_version_tools())
        form = [c[name] for name in FORM_FIELDS]
        versions = [c["kb"], c["version"], c["older"], c["newer"], c["status"]]
        kb, budget, message = c["kb"], c["budget"], c["message"]
        tab.select(self._on_tab, [kb, c["system_prompt"]], [*versions, *form, budget])
        tab.select(lambda kb: self.gate.record(self._selected(kb)), [kb], [c["record"]])
        kb.input(self._on_show, [kb], [*versions, *form, budget])
        c["load"].click(self._on_load, [kb, c["version"]], [*form, budget, message])
        c["start"].input(self._on_start, [c["start"]], [*form, budget, message])
        c["check"].click(self._on_check, form, [budget, message])
        c["examples_form"].wire()
        asked = [kb, c["question"], *form]
        c["preview"].click(self._on_preview, asked, [c["rendered"], budget, message])
        c["trial"].click(self._on_try, asked, [c["draft_answer"], c["active_answer"], message])
        saved, gated = [*versions, message, c["note"]], [*versions, *self.gate.outputs(c), c["record"]]
        c["save"].click(self._on_save, [kb, c["note"], *form], saved)
        just_saved = gr.State(0)
        c["save_activate"].click(self._on_save_to_activate, [kb, c["note"], *form], [*saved, just_saved]).then(
            self._on_activate_saved, [kb, just_saved], gated
        )
        c["activate"].click(self._on_activate, [kb, c["version"]], gated)
        c["gate_override"].click(self._on_override, [kb, c["gate_result"], c["gate_reason"]], gated)
        c["compare"].click(self._on_compare, [kb, c["older"], c["newer"]], [c["diff"]])

    # ---- handlers ------------------------------------------------------------------------
    def _selected(self, kb: str | None) -> str:
        return kb if kb and kb in self.chat.knowledge_base_names() else self.chat.default_kb

    def _versions(self, kb: str | None) -> tuple[Any, ...]:
        names = self.chat.knowledge_base_names()
        kb = self._selected(kb)
        listed = self.store.versions(kb) if kb else []
        active = self.store.active(kb) if kb else None
        choices = [(v.label, v.version) for v in listed] + [("built-in default", 0)]
        selected = active.version if active else 0
        status = f"Active: **{escape_markdown(active.label)}**" if active else ""
        return (
            gr.Dropdown(choices=names, value=kb),
            gr.Dropdown(choices=choices, value=selected),
            gr.Dropdown(choices=choices, value=choices[1][1] if len(choices) > 1 else 0),  # the newest two
            gr.Dropdown(choices=choices, value=choices[0][1]),
            status,
        )

    def _budget_text(self, template: AssistantTemplate) -> str:
        return f"**Token budget:** {self.drafts.budget(template).describe()}"

    def _on_show(self, kb: str | None) -> tuple[Any, ...]:
        active = self.store.active(self._selected(kb))
        return *self._versions(kb), *form_from_template(active.template), self._budget_text(active.template)

    def _on_tab(self, kb: str | None, system_prompt: str) -> tuple[Any, ...]:
        """Back on the tab: fresh version list, but a draft in the editor is kept (only a new page or another
        knowledge base loads the active template)."""
        if system_prompt:
            return *self._versions(kb), *([gr.skip()] * (len(FORM_FIELDS) + 1))
        return self._on_show(kb)

    def _on_load(self, kb: str | None, version: int | None) -> tuple[Any, ...]:
        try:
            loaded = self.store.get(self._selected(kb), int(version or 0))
        except RagdeskError as e:
            return *([gr.skip()] * len(FORM_FIELDS)), gr.skip(), str(e)
        return *form_from_template(loaded.template), self._budget_text(loaded.template), f"Loaded {loaded.label}."

    def _on_start(self, name: str | None) -> tuple[Any, ...]:
        template = DEFAULTS.get(name or "", DEFAULTS["English"])
        return *form_from_template(template), self._budget_text(template), f"Started from the {name} default."

    def _draft(self, form: tuple[Any, ...]) -> tuple[AssistantTemplate | None, str]:
        """The form as a template, or a message listing every problem."""
        try:
            template = template_from_form(*form)
        except InvalidTemplateError as e:
            return None, _problems(e.problems)
        problems = template_problems(template)
        budget = self.drafts.budget(template)
        if not budget.fits:
            problems.append(f"Too long for the model: {budget.describe()}.")
        return (None, _problems(problems)) if problems else (template, "")

    def _on_check(self, *form: Any) -> tuple[Any, ...]:
        template, problems = self._draft(form)
        if template is None:
            return gr.skip(), problems
        return self._budget_text(template), "✓ The template is valid." + _advice(template_advice(template))

    def _on_preview(self, kb: str | None, question: str, *form: Any) -> tuple[Any, ...]:
        template, problems = self._draft(form)
        if template is None:
            return gr.skip(), gr.skip(), problems
        try:
            shown = self.drafts.preview_prompt(self._selected(kb), template, question)
        except RagdeskError as e:
            return gr.skip(), gr.skip(), str(e)
        summary = f"Preview for the sample question: {shown.prompt_tokens:,} prompt tokens."
        return shown.text, self._budget_text(template), summary

    def _on_try(self, kb: str | None, question: str, *form: Any) -> tuple[Any, ...]:
        template, problems = self._draft(form)
        if template is None:
            return gr.skip(), gr.skip(), problems
        kb = self._selected(kb)
        active = self.store.active(kb)
        try:
            draft = self.drafts.try_template(kb, template, question)
            live = self.drafts.try_template(kb, active.template, question)
        except RagdeskError as e:
            return gr.skip(), gr.skip(), str(e)
        except Exception:  # the outermost layer: anything unexpected is logged with its traceback, not shown
            logger.exception("trying a template failed")
            return gr.skip(), gr.skip(), "The model could not answer; see the server log."
        missed = [f"The draft's answer did not {instruction}." for instruction in unfollowed(template, draft.answer)]
        notes = _advice(missed + template_advice(template))
        return _trial("Draft", draft), _trial(f"Active ({active.label})", live), "Both answers are below." + notes

    def _on_save(self, kb: str | None, note: str, *form: Any) -> tuple[Any, ...]:
        kb = self._selected(kb)
        template, problems = self._draft(form)
        if template is None:
            return *self._versions(kb), problems, gr.skip()
        saved = self.store.save(kb, template, note=note)
        return *self._versions(kb), f"Saved (not active yet): {escape_markdown(saved.label)}.", ""

    def _on_save_to_activate(self, kb: str | None, note: str, *form: Any) -> tuple[Any, ...]:
        """Save and activate, first step: the new version's number for the gate (0 when nothing was saved)."""
        saved = self._on_save(kb, note, *form)
        versions = self.store.versions(self._selected(kb))
        return *saved, versions[0].version if saved[-1] == "" and versions else 0

    def _on_activate_saved(
        self, kb: str | None, version: int, request: gr.Request, progress: gr.Progress = GATE_PROGRESS
    ) -> tuple[Any, ...]:
        """Save and activate, second step: the saved version through the gate (nothing when the save failed)."""
        if not version:
            return tuple(gr.skip() for _ in range(11))
        return self._on_activate(kb, version, request, progress)

    def _on_activate(
        self, kb: str | None, version: int | None, request: gr.Request, progress: gr.Progress = GATE_PROGRESS
    ) -> tuple[Any, ...]:
        kb = self._selected(kb)
        gated = self.gate.run(kb, int(version or 0), request, progress)
        return *self._versions(kb), *gated, self.gate.record(kb)

    def _on_override(self, kb: str | None, result: Any, reason: str, request: gr.Request) -> tuple[Any, ...]:
        kb = self._selected(kb)
        gated = self.gate.override(kb, result, reason, request)
        return *self._versions(kb), *gated, self.gate.record(kb)

    def _on_compare(self, kb: str | None, older: int | None, newer: int | None) -> str:
        try:
            changes = self.store.diff(self._selected(kb), int(older or 0), int(newer or 0))
        except RagdeskError as e:
            return str(e)
        return changes or "The two versions are identical."


FORM_FIELDS = [
    "system_prompt",
    "examples",
    "cot",
    "no_answer",
    "k",
    "threshold",
    "temperature",
    "max_new_tokens",
    "grounding",
    "quote_lead",
    "closing_line",
]


def _advice(notes: list[str]) -> str:
    """What the customer will not reliably see, under a check's or a trial's verdict."""
    return "".join(f"\n\n⚠ {escape_markdown(note)}" for note in notes)


def _picker() -> dict[str, Any]:
    with gr.Row():
        kb = gr.Dropdown(label="Knowledge base", choices=[], elem_id="prompts-kb", scale=2)
        version = gr.Dropdown(label="Version", choices=[], elem_id="prompts-version", scale=3)
        load = gr.Button("Load into editor", elem_id="prompts-load", scale=1)
        start = gr.Dropdown(label="Or start from", choices=list(DEFAULTS), value=None, elem_id="prompts-start", scale=1)
    return {"kb": kb, "version": version, "load": load, "start": start, "status": gr.Markdown(elem_id="prompts-status")}


def _template_form() -> dict[str, Any]:
    c: dict[str, Any] = {}
    c["system_prompt"] = gr.Textbox(
        label="System prompt ({context}: the retrieved documents, required; {kb}: the knowledge base's name)",
        lines=7,
        elem_id="prompt-system",
    )
    with gr.Row():
        c["cot"] = gr.Checkbox(label="Chain-of-thought (reasoning hidden from customers)", elem_id="prompt-cot")
        c["k"] = gr.Slider(1, 20, step=1, label="Chunks given to the model (k)", elem_id="prompt-k")
        c["threshold"] = gr.Slider(0, 1, step=0.01, label="Relevance threshold", elem_id="prompt-threshold")
        c["temperature"] = gr.Slider(0, 2, step=0.05, label="Temperature", elem_id="prompt-temperature")
        c["max_new_tokens"] = gr.Number(label="Max new tokens", precision=0, elem_id="prompt-max-tokens")
    c["grounding"] = gr.Radio(
        [
            ("Trim: show only sentences the documents support (quote the documents when none is left)", "trim"),
            ("Refuse: stop at the first unsupported sentence (handoff reply when nothing was shown)", "refuse"),
            ("Quote: always answer with the documents' own sentences (the model writes nothing)", "quote"),
            ("Off: show the model's answer unchecked", "off"),
        ],
        label="Grounding check (each answer sentence against the retrieved documents; with any but Off, a "
        "question about something the documents never mention gets the no-answer reply)",
        elem_id="prompt-grounding",
    )
    c["quote_lead"] = gr.Textbox(label="Line before a quoted answer", max_lines=1, elem_id="prompt-quote-lead")
    c["closing_line"] = gr.Textbox(
        label="Closing line (added to the end of every answer, whoever wrote it; e.g. a sign-off)",
        max_lines=1,
        elem_id="prompt-closing-line",
    )
    c["no_answer"] = gr.Textbox(
        label="No-answer reply (sent without calling the model when nothing relevant is found; add a handoff)",
        lines=2,
        elem_id="prompt-no-answer",
    )
    return {**c, **_examples_editor()}


def _examples_editor() -> dict[str, Any]:
    editor = ExamplesForm()
    return {"examples": editor.rows, "examples_form": editor}


def _trials() -> dict[str, Any]:
    c: dict[str, Any] = {"budget": gr.Markdown(elem_id="prompt-budget")}
    with gr.Row():
        c["question"] = gr.Textbox(label="Sample question", value=SAMPLE_QUESTION, elem_id="prompt-question", scale=3)
        c["check"] = gr.Button("Check", elem_id="prompt-check", scale=1)
        c["preview"] = gr.Button("Preview prompt", elem_id="prompt-preview", scale=1)
        c["trial"] = gr.Button("Try draft vs active", elem_id="prompt-try", scale=1)
    with gr.Row():
        c["note"] = gr.Textbox(label="Note for this version", placeholder="e.g. warmer tone", elem_id="prompt-note")
        c["save"] = gr.Button("Save as new version", elem_id="prompt-save")
        c["save_activate"] = gr.Button("Save and activate", variant="primary", elem_id="prompt-save-activate")
    c["message"] = gr.Markdown(elem_id="prompt-message")
    return c


def _trial_answers() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["draft_answer"] = gr.Markdown(label="Draft", elem_id="try-draft")
        c["active_answer"] = gr.Markdown(label="Active", elem_id="try-active")
    c["rendered"] = gr.Textbox(
        label="The prompt as the model reads it",
        lines=12,
        max_lines=40,
        interactive=False,
        buttons=["copy"],
        elem_id="prompt-rendered",
    )
    return c


def _version_tools() -> dict[str, Any]:
    c: dict[str, Any] = {}
    with gr.Accordion("Versions: activate, roll back, compare", open=False, elem_id="prompt-versions"):
        c["activate"] = gr.Button("Activate the selected version", elem_id="prompt-activate")
        with gr.Row():
            c["older"] = gr.Dropdown(label="Compare", choices=[], elem_id="diff-old")
            c["newer"] = gr.Dropdown(label="with", choices=[], elem_id="diff-new")
            c["compare"] = gr.Button("Show changes", elem_id="prompt-compare")
        c["diff"] = gr.Code(label="Changes", language=None, wrap_lines=True, elem_id="prompt-diff")
        gr.Markdown("**Activations** (the evaluation gate's scores, and the reason when one was overridden)")
        c["record"] = gr.Markdown(elem_id="prompt-activations")
    return c


def _problems(problems: list[str]) -> str:
    return "**Cannot use this template:**\n" + "\n".join(f"- {escape_markdown(p)}" for p in problems)


def _trial(title: str, trial: Any) -> str:
    flag = "" if trial.answered else " *(no relevant document: the no-answer reply)*"
    return f"#### {escape_markdown(title)}{flag}\n\n{render_answer(trial.answer, trial.sources)}"
