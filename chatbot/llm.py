"""The chat-model factory: local transformers model, an OpenAI-compatible server, or a scripted fake."""

from __future__ import annotations

import logging
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from chatbot.settings import LLMSettings

logger = logging.getLogger(__name__)


def build_chat_model(cfg: LLMSettings, models_dir: Path) -> BaseChatModel:
    match cfg.backend:
        case "local":
            from chatbot.local_model import LocalChatModel

            return LocalChatModel.load(cfg, models_dir)
        case "openai-compatible":
            from langchain_openai import ChatOpenAI

            logger.info("llm backend=openai-compatible model=%s base_url=%s", cfg.openai.model, cfg.openai.base_url)
            return ChatOpenAI(
                model=cfg.openai.model,
                base_url=cfg.openai.base_url,
                api_key=cfg.openai.api_key,
                timeout=cfg.openai.timeout_s,
                max_retries=1,
                max_completion_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                streaming=True,
            )
        case "fake":
            logger.info("llm backend=fake")
            return FakeListChatModel(responses=cfg.fake_responses)
