"""OpenAI-compatible endpoints: `POST /v1/chat/completions` (stream and not) and `GET /v1/models`, where a model
is a knowledge base. The caller keeps the history (as with OpenAI); answers carry their sources."""

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, Field, model_validator

from chatbot.access.api_keys import Caller
from chatbot.conversation.plain_text import unreadable
from chatbot.conversation.service import final
from chatbot.conversation.turns import AnswerDelta, TurnEvent, TurnResult
from chatbot.errors import InvalidQuestionError, RagdeskError
from chatbot.services import Services
from chatbot.web.api_auth import authenticator
from chatbot.web.validation import Text

MAX_MESSAGES = 500
MAX_TOKENS = 131_072  # larger is refused; the template's max new tokens caps what is honoured


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: Text | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""

    @model_validator(mode="after")
    def _plain_parts(self) -> "Message":
        problem = unreadable(self.text) if isinstance(self.content, list) else None
        if problem:
            raise ValueError(f"a content part contains {problem}; send plain UTF-8 text")
        return self


class CompletionRequest(BaseModel):
    model: Text = Field(max_length=200, description="The knowledge base to answer from.")
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    user: Text | None = Field(None, max_length=200)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS, description="At most the template's max new tokens.")
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS, description="As max_tokens.")
    temperature: float | None = Field(None, ge=0, le=2)

    @property
    def answer_limits(self) -> dict[str, Any]:
        """What the caller asked of the answer, within the server's limits."""
        limits: dict[str, Any] = {"temperature": self.temperature}
        limits["max_new_tokens"] = self.max_completion_tokens or self.max_tokens
        return {name: value for name, value in limits.items() if value is not None}


def build_openai_router(services: Services) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["openai-compatible"])
    chat_caller = Annotated[Caller, authenticator(services.api_keys, services.settings.on_loopback)("chat")]
    chat = services.chat

    @router.get("/models")
    def models(caller: chat_caller) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": kb.name, "object": "model", "created": int(kb.created_at.timestamp()), "owned_by": "ragdesk"}
                for kb in services.knowledge.knowledge_bases()
            ],
        }

    @router.post("/chat/completions")
    def completions(body: CompletionRequest, caller: chat_caller) -> Any:
        question, history = _split(body.messages)
        chat.validate_question(question)
        _check_history_length(body.messages, services.settings.chat.max_history_chars)
        events = chat.stream_reply(body.model, question, history, **body.answer_limits)  # 404 before any stream
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if body.stream:
            return StreamingResponse(_chunks(events, completion_id, body.model), media_type="text/event-stream")
        result = final(events)
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": result.answer}, "finish_reason": "stop"}
            ],
            "sources": [asdict(s) for s in result.sources],
            "answered": result.answered,
            "refusal": result.refusal,
            "citations": [asdict(c) for c in result.citations],
        }

    return router


def _check_history_length(messages: list[Message], limit: int) -> None:
    total = sum(len(m.text) for m in messages)
    if total > limit:
        raise InvalidQuestionError(
            f"The messages are too long together ({total:,} characters; the limit is {limit:,}). Send fewer or "
            "shorter earlier turns."
        )


def _split(messages: list[Message]) -> tuple[str, list[BaseMessage]]:
    """The last user message is the question; earlier user/assistant turns are the history."""
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise InvalidQuestionError("The last message must be the customer's (role 'user').")
    history: list[BaseMessage] = [HumanMessage(m.text) if m.role == "user" else AIMessage(m.text) for m in turns[:-1]]
    return turns[-1].text, history


def _chunks(events: Iterator[TurnEvent], completion_id: str, model: str) -> Iterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in events:
            if isinstance(event, AnswerDelta):
                yield chunk({"content": event.text})
            elif isinstance(event, TurnResult):
                sources = [asdict(s) for s in event.sources]
                citations = [asdict(c) for c in event.citations]
                yield chunk(
                    {}, "stop", sources=sources, citations=citations, answered=event.answered, refusal=event.refusal
                )
    except RagdeskError as e:
        yield f"data: {json.dumps({'error': {'message': str(e), 'type': type(e).__name__}})}\n\n"
    yield "data: [DONE]\n\n"
