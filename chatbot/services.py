"""Services: the parts the front ends (web API, UI) are handed; wiring.build_services makes them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from chatbot.access.api_keys import ApiKeyStore
from chatbot.access.portal_origins import PortalOriginStore
from chatbot.conversation.drafts import DraftBench
from chatbot.conversation.history import ConversationStore
from chatbot.conversation.service import ChatService
from chatbot.conversation.template_store import TemplateStore
from chatbot.conversation.templates import DEFAULTS
from chatbot.insights.service import InsightsService
from chatbot.settings import Settings
from knowledge.service import KnowledgeService


@dataclass(frozen=True)
class Services:
    settings: Settings
    knowledge: KnowledgeService
    chat: ChatService
    conversations: ConversationStore  # every customer's conversations (admin views)
    templates: TemplateStore
    drafts: DraftBench
    api_keys: ApiKeyStore
    portal_origins: PortalOriginStore  # who may frame the widget: settings' origins and the admins'
    insights: InsightsService
    support_metrics: CollectorRegistry  # the support figures from the database, for /metrics
    model_health: Callable[[], dict[str, Any]]
    database: Engine  # the pool every store shares; close() returns its connections

    def close(self) -> None:
        """Give back the database and vector store connections (the app's shutdown, a test's end)."""
        self.knowledge.close()
        self.database.dispose()

    def health(self) -> dict[str, Any]:
        """Each component's own report: the model, the registry database and the vector store."""
        return {"llm": self.model_health(), **self.knowledge.health()}

    def start_knowledge_base(self, name: str, language: str) -> None:
        """A new knowledge base whose active template is the starting one in `language` (a key of DEFAULTS:
        "English" or "中文"), with this deployment's grounding policy."""
        self.knowledge.create_knowledge_base(name)
        policy = self.templates.active(self.settings.default_kb).template.grounding_policy
        template = DEFAULTS[language].model_copy(update={"grounding_policy": policy})
        self.templates.save(name, template, note=f"starting template ({language})", activate=True)
