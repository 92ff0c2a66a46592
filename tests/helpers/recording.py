"""A callback that records every prompt a chat model is sent, so a test can read what the model saw."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import BaseCallbackHandler


class PromptRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: list[list[Any]], **kwargs: Any) -> None:
        self.prompts.append("\n".join(str(m.content) for m in messages[0]))
