"""The `openai-compatible` backend: a chat model served elsewhere (vLLM, TGI, `transformers serve`, llama.cpp).

A server that is down, slow or refusing gives the customer one clear sentence within the configured timeout,
never a hung answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import openai
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from chatbot.errors import ModelUnavailableError
from chatbot.settings import LLMSettings

logger = logging.getLogger(__name__)


class RemoteChatModel(ChatOpenAI):
    """ChatOpenAI whose transport failures become messages that name the server and what went wrong."""

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        try:
            return super()._generate(messages, stop, run_manager, **kwargs)
        except openai.OpenAIError as e:
            raise self._unavailable(e) from e

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        try:
            yield from super()._stream(messages, stop, run_manager, **kwargs)
        except openai.OpenAIError as e:
            raise self._unavailable(e) from e

    def health(self) -> dict[str, Any]:
        """What /healthz shows of the model: the server and the model it serves."""
        return {"backend": "openai-compatible", "model": self.model_name, "base_url": self.openai_api_base}

    def _unavailable(self, error: openai.OpenAIError) -> ModelUnavailableError:
        server = self.openai_api_base or "the language model server"
        logger.warning("openai-compatible backend %s failed: %r", server, error)
        if isinstance(error, openai.APITimeoutError):
            return ModelUnavailableError(
                f"The language model server ({server}) did not answer within {self.request_timeout} s. "
                "Please try again in a moment."
            )
        if isinstance(error, openai.APIConnectionError):
            return ModelUnavailableError(
                f"The language model server ({server}) cannot be reached. Please try again in a moment."
            )
        if isinstance(error, openai.APIStatusError):
            return ModelUnavailableError(
                f"The language model server ({server}) refused the request (HTTP {error.status_code})."
            )
        return ModelUnavailableError(f"The language model server ({server}) failed: {type(error).__name__}.")


def build_remote_model(cfg: LLMSettings) -> RemoteChatModel:
    """The configured server's model. It sends the temperature and answer length a call binds, and none of its own."""
    logger.info("llm backend=openai-compatible model=%s base_url=%s", cfg.openai.model, cfg.openai.base_url)
    return RemoteChatModel(
        model=cfg.openai.model,
        base_url=cfg.openai.base_url,
        api_key=cfg.openai.api_key,
        timeout=cfg.openai.timeout_s,
        max_retries=0,  # a retry would double the customer's wait past the configured timeout
        top_p=cfg.top_p,
        streaming=True,
    )
