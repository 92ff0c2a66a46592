"""build_services(settings): the one place that reads settings and picks the concrete parts of the conversation side."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from prometheus_client import CollectorRegistry
from sqlalchemy.orm import Session, sessionmaker

from chatbot.access.api_keys import ApiKeyStore
from chatbot.access.portal_origins import PortalOriginStore
from chatbot.conversation.admission import AnswerQueue
from chatbot.conversation.drafts import DraftBench
from chatbot.conversation.grounding import GroundingCheck
from chatbot.conversation.history import ConversationStore
from chatbot.conversation.pipeline import TurnPipeline
from chatbot.conversation.prompt_fitting import PromptFitter
from chatbot.conversation.quoting import QuotePicker
from chatbot.conversation.service import ChatService
from chatbot.conversation.template_store import TemplateStore
from chatbot.conversation.templates import ENGLISH_DEFAULT, AssistantTemplate
from chatbot.insights.evaluation_gate import EvaluationGate
from chatbot.insights.evaluation_sets import EvaluationSets
from chatbot.insights.faq import FaqBook
from chatbot.insights.knowledge_gaps import KnowledgeGaps
from chatbot.insights.prometheus import SupportCollector
from chatbot.insights.question_vectors import QuestionVectors
from chatbot.insights.service import InsightsService
from chatbot.insights.support_metrics import SupportMetrics
from chatbot.llm.factory import LanguageModel, build_language_model, describe_model, embeddings_beside
from chatbot.migrations.schema import upgrade_database
from chatbot.services import Services
from chatbot.settings import Settings
from knowledge.database import open_database
from knowledge.embeddings import build_embeddings
from knowledge.service import KnowledgeService, build_knowledge_service


def build_services(
    settings: Settings, llm: BaseChatModel | None = None, embeddings: Embeddings | None = None
) -> Services:
    """Build everything from settings; tests may hand in an already loaded chat model or embeddings."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if llm is None:
        embeddings = embeddings_beside(settings.llm, embeddings or build_embeddings(settings.embeddings))
    engine = open_database(settings.sqlalchemy_url)
    upgrade_database(engine)  # the schema migrated first: nothing below reads a table it does not know
    knowledge = build_knowledge_service(settings, embeddings=embeddings, engine=engine)
    model = describe_model(llm, settings.llm) if llm else build_language_model(settings.llm, settings.models_path)
    fitter = PromptFitter(
        model.count_tokens, model.context_window, settings.chat.history_tokens, settings.chunking.chunk_size
    )
    grounding = GroundingCheck(knowledge.embeddings, settings.grounding)
    quotes = QuotePicker(knowledge.embeddings, settings.grounding)
    pipeline = TurnPipeline(
        model, knowledge, fitter, grounding, quotes, settings.chat.max_question_chars, model_languages(settings)
    )
    sessions = sessionmaker(engine, expire_on_commit=False)
    conversations = ConversationStore(sessions)
    templates = TemplateStore(sessions, default=_default_template(settings))
    drafts = DraftBench(pipeline, knowledge, fitter, model)
    insights = _insights(settings, sessions, knowledge, drafts, templates, model)
    return Services(
        settings=settings,
        knowledge=knowledge,
        chat=ChatService(
            pipeline, knowledge, conversations, templates, settings.default_kb, AnswerQueue(settings.queue)
        ),
        conversations=conversations,
        templates=templates,
        drafts=drafts,
        api_keys=ApiKeyStore(sessions, settings.api_keys),
        portal_origins=PortalOriginStore(sessions, settings.portal.allowed_origins),
        insights=insights,
        support_metrics=_support_metrics(insights),
        model_health=model.health,
        database=engine,
    )


def _support_metrics(insights: InsightsService) -> CollectorRegistry:
    """The support figures /metrics reads from the database, in a registry of their own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SupportCollector(insights.metrics))
    return registry


def _insights(
    settings: Settings,
    sessions: sessionmaker[Session],
    knowledge: KnowledgeService,
    drafts: DraftBench,
    templates: TemplateStore,
    model: LanguageModel,
) -> InsightsService:
    e = settings.embeddings
    embedding_model = f"{e.backend}:{e.model or 'bundled'}:{'multilingual' if e.multilingual else 'english'}"
    sets = EvaluationSets(sessions, settings.insights.max_test_cases)
    return InsightsService(
        metrics=SupportMetrics(sessions),
        gaps=KnowledgeGaps(
            sessions, QuestionVectors(sessions, knowledge.embeddings, embedding_model), settings.insights
        ),
        faq=FaqBook(sessions, knowledge),
        sets=sets,
        gate=EvaluationGate(sessions, drafts, templates, sets, settings.insights.gate_margin),
        model=model,
        knowledge=knowledge,
    )


def _default_template(settings: Settings) -> AssistantTemplate:
    """The built-in template, with this deployment's retrieval and generation settings (their one way in)."""
    return ENGLISH_DEFAULT.model_copy(
        update={
            "k": settings.retrieval.k,
            "temperature": settings.llm.temperature,
            "max_new_tokens": settings.llm.max_new_tokens,
            "grounding_policy": grounding_policy(settings),
        }
    )


def _bundled(settings: Settings) -> bool:
    return settings.llm.backend == "local" and settings.llm.local.model is None


def model_languages(settings: Settings) -> list[str]:
    """The languages the model answers in: as set, else English for the bundled model, English and Chinese else."""
    if settings.llm.languages is not None:
        return list(settings.llm.languages)
    return ["en"] if _bundled(settings) else ["en", "zh"]


def grounding_policy(settings: Settings) -> str:
    """The grounding policy of new templates: "auto" quotes with the bundled model and trims with any other."""
    if settings.grounding.policy != "auto":
        return settings.grounding.policy
    return "quote" if _bundled(settings) else "trim"
