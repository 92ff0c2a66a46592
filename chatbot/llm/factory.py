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

from chatbot.errors import ModelUnavailableError
from chatbot.llm.devices import resolve_device
from chatbot.llm.local_model import LocalChatModel, effective_context_window, load_local_weights
from chatbot.llm.runtime.batching import BatchScheduler
from chatbot.settings import LLMSettings, LocalLLMSettings

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
            return describe_model(build_local_model(cfg, models_dir), cfg)
        case "openai-compatible":
            from chatbot.llm.remote_model import build_remote_model

            return describe_model(build_remote_model(cfg), cfg)
        case "fake":
            logger.info("llm backend=fake")
            return describe_model(FakeListChatModel(responses=cfg.fake_responses), cfg)


def build_local_model(cfg: LLMSettings, models_dir: Path) -> LocalChatModel:
    """The local model: its weights loaded, its context window settled once, and the scheduler that runs it."""
    weights = load_local_weights(cfg, models_dir)
    window = effective_context_window(weights.model, cfg.context_window)
    scheduler = build_scheduler(weights.model, weights.name, cfg.local, window)
    return LocalChatModel.from_weights(
        weights, scheduler, context_window=window, top_p=cfg.top_p, repetition_penalty=cfg.repetition_penalty
    )


def build_scheduler(
    model: Any,
    name: str,
    cfg: LocalLLMSettings,
    window: int,
    make_scheduler: Callable[..., BatchScheduler] = BatchScheduler,
) -> BatchScheduler:
    """The batching scheduler; on CUDA a lone answer can decode through a compiled CUDA-graph step, and
    concurrent answers through static cache slots and captured CUDA graphs. Each is a speed-up, never a reason
    not to serve: if warming both up fails, each is tried alone, then neither."""
    if model.device.type == "cuda" and (cfg.compile or cfg.batch_graphs):
        for compiled, graphs in _cuda_graph_tries(cfg):
            parts = " and ".join(p for p, on in (("compiled lone decode", compiled), ("batch graphs", graphs)) if on)
            logger.info("preparing the CUDA-graph decode of %s (%s; once, at start-up)", name, parts)
            scheduler = make_scheduler(
                model,
                model_name=name,
                max_batch=cfg.max_batch,
                lone_decode="compiled" if compiled else "off",
                slot_decode="graphs" if graphs else "off",
                static_cache_len=window,
            )
            try:
                scheduler.warm_up()
                return scheduler
            except ModelUnavailableError as e:  # the scheduler thread logged the cause with its traceback
                logger.warning("could not prepare the %s of %s: %s", parts, name, e)
                scheduler.close()
        logger.warning("CUDA-graph decoding is unavailable for %s: decoding eagerly", name)
    return make_scheduler(model, model_name=name, max_batch=cfg.max_batch, cpu_threads=cfg.cpu_threads)


def describe_model(chat: BaseChatModel, cfg: LLMSettings) -> LanguageModel:
    """The LanguageModel of an already built chat model (the factory's, or one a test hands in)."""
    from chatbot.llm.remote_model import RemoteChatModel

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
        health=chat.health if isinstance(chat, RemoteChatModel) else lambda: _plain_health(chat, cfg),
    )


def embeddings_beside(cfg: LLMSettings, embeddings: Embeddings) -> Embeddings:
    """Embeddings that leave the cores to a local model on the CPU (they compute in passing threads there)."""
    from chatbot.llm.runtime.cpu_threads import PassingThreadEmbeddings, single_core_by_default

    if cfg.backend != "local" or resolve_device(cfg.local) != "cpu":
        return embeddings
    single_core_by_default()  # before any torch work: the cores go to the model's scheduler thread
    return PassingThreadEmbeddings(embeddings)


def _cuda_graph_tries(cfg: LocalLLMSettings) -> list[tuple[bool, bool]]:
    """(compiled lone decode, batch graphs) to warm up in turn: as configured, then each alone."""
    tries = [(cfg.compile, cfg.batch_graphs)]
    if cfg.compile and cfg.batch_graphs:
        tries += [(False, True), (True, False)]
    return tries


def _plain_health(chat: BaseChatModel, cfg: LLMSettings) -> dict[str, Any]:
    return {"backend": cfg.backend, "model": chat.get_name()}


def _plain_prompt(messages: list[BaseMessage]) -> str:
    return "\n\n".join(f"[{m.type}]\n{m.content}" for m in messages)
