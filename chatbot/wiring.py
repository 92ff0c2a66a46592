"""build_services(settings): the only place that picks concrete classes for the conversation side."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages.utils import count_tokens_approximately
from sqlalchemy.orm import sessionmaker

from chatbot.api_keys import ApiKeyStore
from chatbot.cpu_threads import PassingThreadEmbeddings, single_core_by_default
from chatbot.history import ConversationStore
from chatbot.llm import build_chat_model
from chatbot.local_model import LocalChatModel, resolve_device  # imports torch only when a model is used
from chatbot.service import ChatService, TokenCounter
from chatbot.settings import Settings
from chatbot.template_store import TemplateStore
from chatbot.templates import ENGLISH_DEFAULT, AssistantTemplate
from knowledge.database import create_tables, open_database
from knowledge.embeddings import build_embeddings
from knowledge.service import KnowledgeService, build_knowledge_service


@dataclass(frozen=True)
class Services:
    settings: Settings
    knowledge: KnowledgeService
    chat: ChatService
    api_keys: ApiKeyStore


def build_services(
    settings: Settings, llm: BaseChatModel | None = None, embeddings: Embeddings | None = None
) -> Services:
    """Build everything from settings; tests may hand in an already loaded model or embeddings."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if llm is None and settings.llm.backend == "local" and resolve_device(settings.llm.local) == "cpu":
        single_core_by_default()  # before any torch work: the cores go to the model's scheduler thread
        embeddings = PassingThreadEmbeddings(embeddings or build_embeddings(settings.embeddings))
    engine = open_database(settings.sqlalchemy_url)
    create_tables(engine)
    knowledge = build_knowledge_service(settings, embeddings=embeddings, engine=engine)
    llm = llm or build_chat_model(settings.llm, settings.models_path)
    sessions = sessionmaker(engine, expire_on_commit=False)
    chat = ChatService(
        llm=llm,
        knowledge=knowledge,
        conversations=ConversationStore(sessions),
        templates=TemplateStore(sessions, default=_default_template(settings)),
        settings=settings.chat,
        token_counter=_token_counter(llm),
        default_kb=settings.default_kb,
        context_window=getattr(llm, "context_window", None) or settings.llm.context_window,
    )
    return Services(settings, knowledge, chat, ApiKeyStore(sessions, settings.api_keys))


def _default_template(settings: Settings) -> AssistantTemplate:
    """The built-in template, with the generation and retrieval settings of this deployment."""
    return ENGLISH_DEFAULT.model_copy(
        update={
            "k": settings.retrieval.k,
            "temperature": settings.llm.temperature,
            "max_new_tokens": settings.llm.max_new_tokens,
        }
    )


def _token_counter(llm: BaseChatModel) -> TokenCounter:
    """The model's own tokenizer when it has one (local models), else LangChain's approximation."""
    if isinstance(llm, LocalChatModel):
        return lambda messages: llm.get_num_tokens_from_messages(messages)
    return count_tokens_approximately
