"""DraftBench: a template tried, previewed and measured before it is activated, saving nothing (the Prompts tab)."""

from __future__ import annotations

from dataclasses import dataclass

from chatbot.conversation.history import PassingHistory
from chatbot.conversation.pipeline import TurnPipeline, TurnRequest
from chatbot.conversation.prompt_fitting import PromptFitter
from chatbot.conversation.service import final
from chatbot.conversation.templates import AssistantTemplate, PromptBudget, answer_prompt, check_template
from chatbot.llm.factory import LanguageModel
from knowledge.retriever import Source
from knowledge.service import KnowledgeService


@dataclass(frozen=True)
class Trial:
    """A template's answer to one question, nothing saved."""

    answer: str
    reasoning: str
    sources: list[Source]
    answered: bool


@dataclass(frozen=True)
class PromptPreview:
    text: str  # exactly what the model reads (chat template applied when the model has one)
    prompt_tokens: int
    budget: PromptBudget
    sources: list[Source]


class DraftBench:
    def __init__(
        self, pipeline: TurnPipeline, knowledge: KnowledgeService, fitter: PromptFitter, model: LanguageModel
    ) -> None:
        self._pipeline = pipeline
        self._knowledge = knowledge
        self._fitter = fitter
        self._model = model

    def try_template(self, kb: str, template: AssistantTemplate, question: str) -> Trial:
        """Answer one question with a (draft) template, as a first turn, saving nothing."""
        kb = self._knowledge.knowledge_base(kb).name
        result = final(self._pipeline.run(TurnRequest(kb, question, PassingHistory(), template)))
        return Trial(result.answer, result.reasoning, result.sources, result.answered)

    def preview_prompt(self, kb: str, template: AssistantTemplate, question: str) -> PromptPreview:
        """The fully rendered prompt for a sample question, with real retrieved context."""
        question = self._pipeline.validate(question)
        check_template(template)
        documents = self._knowledge.search(kb, [question], template.k)
        inputs = self._fitter.inputs(template, kb, [], documents, question)
        messages = answer_prompt(template).format_messages(**inputs)
        return PromptPreview(
            self._model.render_prompt(messages),
            self._model.count_tokens(messages),
            self.budget(template),
            [Source.from_document(d) for d in documents],
        )

    def budget(self, template: AssistantTemplate) -> PromptBudget:
        return self._fitter.budget(template)
