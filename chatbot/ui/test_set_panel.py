"""The test sets on the Insights tab: each knowledge base's questions with their expected answers, imported from a
CSV file or added from approved FAQ entries and the Conversations tab; a case can be removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from chatbot.insights.evaluation_sets import EvaluationSets
from chatbot.ui.rendering import escape_markdown
from knowledge.errors import RagdeskError

CASE_COLUMNS = ["#", "Question", "Expected", "From"]
MAX_CSV_BYTES = 20 * 1024 * 1024
CSV_HELP = (
    "Import a CSV file (UTF-8) with a header line and the columns **question** and **expected_answer**; add "
    "**should_refuse** = yes for questions the documents do not answer (then expected_answer may be empty). "
    "A file is imported whole or not at all; a question already in the set gets the file's expectation."
)


class TestSetPanel:
    __test__ = False  # not a pytest class, whatever its name

    def __init__(self, sets: EvaluationSets, kb_names: Any) -> None:
        self.sets = sets
        self.kb_names = kb_names

    def render(self, tab: gr.Tab) -> None:
        with gr.Row(equal_height=True):
            kb = gr.Dropdown(label="Knowledge base", choices=[], elem_id="testset-kb")
            upload = gr.File(label="CSV file", file_types=[".csv"], type="filepath", elem_id="testset-file")
            load = gr.Button("Import", elem_id="testset-import", scale=0)
        gr.Markdown(CSV_HELP)
        message = gr.Markdown(elem_id="testset-message")
        table = gr.Dataframe(headers=CASE_COLUMNS, interactive=False, wrap=True, elem_id="testset-table")
        with gr.Row(equal_height=True):
            case = gr.Number(label="Case #", precision=0, elem_id="testset-case")
            remove = gr.Button("Remove this case", elem_id="testset-remove", scale=0)
        tab.select(self._on_show, [kb], [kb, table, message])
        kb.input(self._on_show, [kb], [kb, table, message])
        load.click(self._on_import, [kb, upload], [kb, table, message])
        remove.click(self._on_remove, [kb, case], [kb, table, message])

    def _on_show(self, kb: str | None, note: str = "") -> tuple[Any, ...]:
        names = self.kb_names()
        kb = kb if kb in names else (names[0] if names else None)
        cases = self.sets.cases(kb) if kb else []
        rows = [[c.id, c.question, "(should refuse)" if c.should_refuse else c.expected, c.origin] for c in cases]
        count = (
            f"'{escape_markdown(kb or '')}' has {len(cases):,} test questions."
            if cases
            else (
                "No test questions yet: approve an FAQ entry, mark turns in the Conversations tab or import a CSV file."
            )
        )
        return gr.Dropdown(choices=names, value=kb), rows, f"{note}\n\n{count}".strip()

    def _on_import(self, kb: str | None, upload: str | None) -> tuple[Any, ...]:
        if not kb:
            return *self._on_show(kb)[:2], "Pick a knowledge base first."
        if not upload:
            return *self._on_show(kb)[:2], "Choose a CSV file first."
        path = Path(upload)
        if path.stat().st_size > MAX_CSV_BYTES:
            return *self._on_show(kb)[:2], f"**The file is over {MAX_CSV_BYTES // 2**20} MB; nothing was imported.**"
        try:
            imported = self.sets.import_csv(kb, path.read_bytes())
        except RagdeskError as e:
            return *self._on_show(kb)[:2], f"**{escape_markdown(str(e))}**"
        return self._on_show(kb, f"Imported {imported:,} questions from {escape_markdown(path.name)}.")

    def _on_remove(self, kb: str | None, case: float | None) -> tuple[Any, ...]:
        if not kb or not case:
            return *self._on_show(kb)[:2], "Give the number (#) of the case to remove."
        if not self.sets.remove(kb, int(case)):
            return *self._on_show(kb)[:2], f"'{escape_markdown(kb)}' has no test case #{int(case)}."
        return self._on_show(kb, f"Removed case #{int(case)}.")
