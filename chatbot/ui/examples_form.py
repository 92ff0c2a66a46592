"""The Prompts tab's few-shot examples: a numbered list to choose from and a plain form (question, answer, optional
reasoning) to add, update, move and remove one. The examples are [question, answer, reasoning] rows in a gr.State:
the value the tab's template_from_form reads and form_from_template writes."""

from __future__ import annotations

from typing import Any

import gradio as gr

from chatbot.conversation.templates import MAX_EXAMPLES

Rows = list[list[str]]
LABEL_CHARS = 90


class ExamplesForm:
    """The components (made where this is built, inside the tab's layout); `wire` connects their events."""

    def __init__(self) -> None:
        gr.Markdown("**Few-shot examples** (sent to the model as earlier chat turns, in this order)")
        self.rows = gr.State([])
        self.chosen = gr.State(None)  # the number of the example in the form, or None for a new one
        self.listing = gr.Radio(
            label="Examples", info="Choose one to edit, move or remove it.", choices=[], elem_id="example-list"
        )
        self.question = gr.Textbox(label="Customer question", elem_id="example-question")
        self.answer = gr.Textbox(label="Ideal answer", lines=3, elem_id="example-answer")
        self.reasoning = gr.Textbox(label="Reasoning (optional)", lines=2, elem_id="example-reasoning")
        with gr.Row():
            self.add = gr.Button("Add example", elem_id="example-add")
            self.update = gr.Button("Update example", interactive=False, elem_id="example-update")
            self.up = gr.Button("Move up", elem_id="example-up")
            self.down = gr.Button("Move down", elem_id="example-down")
            self.remove = gr.Button("Remove", elem_id="example-remove")
        self.message = gr.Markdown(elem_id="example-message")

    def wire(self) -> None:
        fields = [self.question, self.answer, self.reasoning]
        edited = [self.rows, self.chosen, self.message]
        self.rows.change(show_examples, [self.rows, self.chosen], [self.listing, *fields, self.update])
        self.listing.input(choose_example, [self.rows, self.listing], [self.chosen, *fields, self.update])
        self.add.click(add_example, [self.rows, *fields], edited)
        self.update.click(update_example, [self.rows, self.chosen, *fields], edited)
        self.up.click(lambda rows, n: move_example(rows, n, -1), [self.rows, self.chosen], edited)
        self.down.click(lambda rows, n: move_example(rows, n, 1), [self.rows, self.chosen], edited)
        self.remove.click(remove_example, [self.rows, self.chosen], edited)


def show_examples(rows: Rows | None, chosen: int | None) -> tuple[Any, ...]:
    """The list, and the chosen example in the form (an empty form when none is chosen)."""
    rows = rows or []
    number = chosen if chosen and 0 < chosen <= len(rows) else None
    choices = [(_label(n, row), n) for n, row in enumerate(rows, start=1)]
    return gr.Radio(choices=choices, value=number), *_form(rows, number)


def choose_example(rows: Rows | None, number: int | None) -> tuple[Any, ...]:
    rows = rows or []
    number = number if number and 0 < number <= len(rows) else None
    return number, *_form(rows, number)


def add_example(rows: Rows | None, question: str, answer: str, reasoning: str) -> tuple[Any, ...]:
    rows = [list(r) for r in rows or []]
    problem = _problem(question, answer)
    if not problem and len(rows) >= MAX_EXAMPLES:
        problem = f"At most {MAX_EXAMPLES} examples fit a useful prompt: remove one first."
    if problem:
        return gr.skip(), gr.skip(), problem
    rows.append([question.strip(), answer.strip(), reasoning.strip()])
    return rows, None, f"Added example {len(rows)}."


def update_example(
    rows: Rows | None, number: int | None, question: str, answer: str, reasoning: str
) -> tuple[Any, ...]:
    rows = [list(r) for r in rows or []]
    if not number or not 0 < number <= len(rows):
        return gr.skip(), gr.skip(), "Choose the example to update in the list."
    problem = _problem(question, answer)
    if problem:
        return gr.skip(), gr.skip(), problem
    rows[number - 1] = [question.strip(), answer.strip(), reasoning.strip()]
    return rows, number, f"Updated example {number}."


def move_example(rows: Rows | None, number: int | None, step: int) -> tuple[Any, ...]:
    """The chosen example one place up (step -1) or down (+1); it stays chosen."""
    rows = [list(r) for r in rows or []]
    if not number or not 0 < number <= len(rows):
        return gr.skip(), gr.skip(), "Choose the example to move in the list."
    target = number + step
    if not 0 < target <= len(rows):
        return gr.skip(), gr.skip(), f"Example {number} is already {'first' if step < 0 else 'last'}."
    rows[number - 1], rows[target - 1] = rows[target - 1], rows[number - 1]
    return rows, target, f"Example {number} is now example {target}."


def remove_example(rows: Rows | None, number: int | None) -> tuple[Any, ...]:
    rows = [list(r) for r in rows or []]
    if not number or not 0 < number <= len(rows):
        return gr.skip(), gr.skip(), "Choose the example to remove in the list."
    del rows[number - 1]
    return rows, None, f"Removed example {number}."


def _problem(question: str, answer: str) -> str:
    asked = [("a customer question", question), ("an ideal answer", answer)]
    missing = [name for name, text in asked if not (text or "").strip()]
    return f"An example needs {' and '.join(missing)}." if missing else ""


def _form(rows: Rows, number: int | None) -> tuple[Any, ...]:
    """The form's question, answer and reasoning, and the update button, for example `number` (or a new one)."""
    if number is None:
        return "", "", "", gr.Button("Update example", interactive=False)
    question, answer, reasoning = [*rows[number - 1], "", "", ""][:3]
    return question, answer, reasoning, gr.Button(f"Update example {number}", interactive=True)


def _label(number: int, row: list[str]) -> str:
    text = f"{number}. {' '.join(row[0].split())} → {' '.join(row[1].split())}"
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"
