"""The language-model factory: a local transformers model, an OpenAI-compatible server, or a scripted fake, each
handed out as a LanguageModel (the chat model plus what the rest of the app must know about it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.messages.utils import count_tokens_approximately

from chatbot.settings import LLMSettings

logger = logging.getLogger(__name__)

TokenCounter = Callable[[list[BaseMessage]], int]


@dataclass(frozen=True)
class LanguageModel:
    """A chat model and its public face: how much it reads, how it counts, what it shows, how it is."""

    chat: BaseChatModel
    context_window: int  # the one home of the effective window: the setting, capped by the model's own limit
    count_tokens: TokenCounter
    render_prompt: Callable[[list[BaseMessage]], str]
    health: Callable[[], dict[str, Any]]


def build_language_model(cfg: LLMSettings, models_dir: Path) -> LanguageModel:
    match cfg.backend:
        case "local":
            from chatbot.llm.local_model import LocalChatModel

            return describe_model(LocalChatModel.load(cfg, models_dir), cfg)
        case "openai-compatible":
            from chatbot.llm.remote_model import build_remote_model

            return describe_model(build_remote_model(cfg), cfg)
        case "fake":
            logger.info("llm backend=fake")
            return describe_model(FakeListChatModel(responses=cfg.fake_responses), cfg)


def describe_model(chat: BaseChatModel, cfg: LLMSettings) -> LanguageModel:
    """The LanguageModel of an already built chat model (the factory's, or one a test hands in)."""
    from chatbot.llm.local_model import LocalChatModel

    if isinstance(chat, LocalChatModel):
        return LanguageModel(
            chat=chat,
            context_window=chat.context_window,
            count_tokens=chat.get_num_tokens_from_messages,
            render_prompt=chat.render_prompt,
            health=chat.health,
        )
    return LanguageModel(
        chat=chat,
        context_window=cfg.context_window,
        count_tokens=count_tokens_approximately,
        render_prompt=_plain_prompt,
        health=lambda: {"backend": cfg.backend, "model": chat.get_name()},
    )


def embeddings_beside(cfg: LLMSettings, embeddings: Embeddings) -> Embeddings:
    """Embeddings that leave the cores to a local model on the CPU (they compute in passing threads there)."""
    from chatbot.llm.local_model import resolve_device
    from chatbot.llm.runtime.cpu_threads import PassingThreadEmbeddings, single_core_by_default

    if cfg.backend != "local" or resolve_device(cfg.local) != "cpu":
        return embeddings
    single_core_by_default()  # before any torch work: the cores go to the model's scheduler thread
    return PassingThreadEmbeddings(embeddings)


def _plain_prompt(messages: list[BaseMessage]) -> str:
    return "\n\n".join(f"[{m.type}]\n{m.content}" for m in messages)

