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
            from chatbot.remote_model import build_remote_model

            return build_remote_model(cfg)
        case "fake":
            logger.info("llm backend=fake")
            return FakeListChatModel(responses=cfg.fake_responses)
