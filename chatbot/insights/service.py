"""The Insights tab's one service: knowledge gaps and their FAQ entries, support metrics, test sets and the gate."""

from __future__ import annotations

from chatbot.insights.evaluation_gate import EvaluationGate
from chatbot.insights.evaluation_sets import CaseDraft, EvaluationSets
from chatbot.insights.faq import FaqBook, FaqEntry, FaqError
from chatbot.insights.faq_drafting import draft_answer
from chatbot.insights.knowledge_gaps import KnowledgeGaps, Topic
from chatbot.insights.support_metrics import SupportMetrics
from chatbot.llm.factory import LanguageModel
from knowledge.service import KnowledgeService


class InsightsService:
    def __init__(
        self,
        metrics: SupportMetrics,
        gaps: KnowledgeGaps,
        faq: FaqBook,
        sets: EvaluationSets,
        gate: EvaluationGate,
        model: LanguageModel,
        knowledge: KnowledgeService,
    ) -> None:
        self.metrics, self.gaps, self.faq, self.sets, self.gate = metrics, gaps, faq, sets, gate
        self._model = model
        self._knowledge = knowledge

    def topic(self, key: str) -> Topic:
        """The topic as it is now (new questions may have joined it since the list was shown)."""
        kb = key.rsplit(":", 1)[0]
        found = next((t for t in self.gaps.topics(kb) if t.key == key), None)
        if found is None:
            raise FaqError("This topic is no longer a knowledge gap (answered, or its questions were deleted).")
        return found

    def draft(self, key: str, answer: str = "", by: str = "model") -> FaqEntry:
        """Keep an answer for the topic as a draft: the admin's, or else the model's first draft."""
        topic = self.topic(key)
        written = answer.strip() or draft_answer(self._model, self._knowledge, topic)
        if not written:
            raise FaqError("The model wrote nothing for this topic; write the answer yourself.")
        ids = sorted({q.message_id for q in topic.questions})
        return self.faq.save_draft(topic.kb, key, topic.examples, ids, written, by if answer.strip() else "model")

    def approve(self, entry_id: int, answer: str, by: str) -> FaqEntry:
        """Approve the draft into its knowledge base; its first question and answer join the test set."""
        entry = self.faq.approve(entry_id, answer, by)
        self.sets.add(entry.kb, CaseDraft(entry.questions[0], entry.answer), origin="faq")
        return entry
