"""REST API v1 (chat with SSE streaming, conversations, knowledge bases, documents, feedback), /healthz and
/metrics: thin routes over the services, every call authenticated by an API key."""

import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from chatbot.access.api_keys import Caller
from chatbot.conversation.service import final
from chatbot.conversation.turns import AnswerDelta, SourcesFound, TurnEvent, TurnResult, Waiting
from chatbot.errors import (
    BusyError,
    ConversationBusyError,
    ConversationNotFoundError,
    ModelUnavailableError,
    RagdeskError,
)
from chatbot.services import Services
from chatbot.web.api_auth import authenticator, owner_of
from chatbot.web.validation import Text
from knowledge import metrics
from knowledge.errors import (
    DocumentNotFoundError,
    KnowledgeBaseNameError,
    KnowledgeBaseNotFoundError,
    VectorStoreUnavailableError,
)

logger = logging.getLogger(__name__)

NOT_FOUND = (ConversationNotFoundError, KnowledgeBaseNotFoundError, DocumentNotFoundError)
UNPROCESSABLE = (KnowledgeBaseNameError,)


class ChatRequest(BaseModel):
    question: Text = Field(description="The customer's message.")
    conversation_id: Text | None = Field(
        None, max_length=100, description="Continue this conversation; empty starts a new one."
    )
    kb: Text | None = Field(
        None, max_length=200, description="Knowledge base of a new conversation (default: the default one)."
    )
    stream: bool = Field(False, description="Server-sent events: sources, delta..., done.")
    user: Text | None = Field(None, max_length=200, description="Your own id for the end user; keeps users apart.")


class ChatResponse(BaseModel):
    conversation_id: str
    turn: int
    answer: str
    answered: bool
    refusal: str | None = Field(None, description="Why the handoff reply was given instead of an answer.")
    sources: list[dict[str, Any]]
    citations: list[dict[str, Any]] = Field(
        default_factory=list, description="What each [n] marker in the answer points at: n, document, position..."
    )


class FeedbackRequest(BaseModel):
    conversation_id: Text = Field(max_length=100)
    turn: int = Field(ge=1, description="Which answer (1 = the first of the conversation).")
    rating: Literal["up", "down"]
    reason: Text = Field("", max_length=2000)
    user: Text | None = Field(None, max_length=200)


class KnowledgeBaseRequest(BaseModel):
    name: Text = Field(max_length=200, description="At most 100 characters; no / or \\ and no leading dot.")


def build_api_router(services: Services, uploader: Any) -> APIRouter:
    router = APIRouter()
    needs = authenticator(services.api_keys, services.settings.on_loopback)
    chat_caller, admin_caller = Annotated[Caller, needs("chat")], Annotated[Caller, needs("admin")]
    _operations_routes(router, services)
    _chat_routes(router, services, chat_caller)
    _conversation_routes(router, services, chat_caller)
    _knowledge_base_routes(router, services, chat_caller, admin_caller)
    _document_routes(router, services, uploader, admin_caller)
    return router


def _operations_routes(router: APIRouter, services: Services) -> None:
    @router.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        """Model, database, vector store and the line in front of answering: 200 when the stores answer (status
        "busy" when the line is full: new questions get the busy reply), 503 otherwise."""
        checks = {**services.health(), "queue": services.chat.queue_state()}
        healthy = checks["database"] == "ok" and checks["vector_store"] == "ok"
        status = ("busy" if checks["queue"]["full"] else "ok") if healthy else "degraded"
        return JSONResponse({"status": status, **checks}, status_code=200 if healthy else 503)

    @router.get("/metrics", tags=["operations"], include_in_schema=False)
    def prometheus() -> Response:
        """The process's own metrics, then the support figures every replica reads from the database."""
        return Response(generate_latest() + generate_latest(services.support_metrics), media_type=CONTENT_TYPE_LATEST)


def _chat_routes(router: APIRouter, services: Services, ChatCaller: Any) -> None:
    chat = services.chat

    @router.post("/api/v1/chat", response_model=ChatResponse, tags=["chat"])
    def post_chat(body: ChatRequest, caller: ChatCaller) -> Any:
        """Ask a question in a conversation (new when none is given). Plain JSON, or with `stream: true`
        server-sent events `sources`, `delta` (answer text) and `done` (the whole turn), or `error`."""
        owner = owner_of(caller, body.user)
        chat.validate_question(body.question)  # before a new conversation is made for it
        conversation_id = body.conversation_id or chat.new_conversation(owner, body.kb).id
        try:
            events = chat.stream_answer(owner, conversation_id, body.question)
        except BusyError:  # not answered: no empty conversation is left behind either
            if body.conversation_id is None:
                chat.delete_conversation(owner, conversation_id)
            raise
        if body.stream:
            return StreamingResponse(_sse(events, conversation_id), media_type="text/event-stream")
        return _turn_json(final(events), conversation_id)

    @router.post("/api/v1/feedback", status_code=204, tags=["conversations"])
    def post_feedback(body: FeedbackRequest, caller: ChatCaller) -> None:
        """Thumbs up or down on one answer, with an optional reason."""
        chat.feedback(owner_of(caller, body.user), body.conversation_id, body.turn, body.rating, body.reason)


def _conversation_routes(router: APIRouter, services: Services, ChatCaller: Any) -> None:
    chat = services.chat

    @router.get("/api/v1/conversations", tags=["conversations"])
    def list_conversations(caller: ChatCaller, user: str | None = None) -> list[dict[str, Any]]:
        """Your conversations (the key's, or the given user's under the key), newest first."""
        return [
            {"id": c.id, "title": c.title, "kb": c.kb, "updated_at": c.updated_at.isoformat()}
            for c in chat.list_conversations(owner_of(caller, user))
        ]

    @router.get("/api/v1/conversations/{conversation_id}", tags=["conversations"])
    def get_conversation(conversation_id: str, caller: ChatCaller, user: str | None = None) -> Any:
        turns = chat.transcript(owner_of(caller, user), conversation_id)
        return {
            "id": conversation_id,
            "turns": [
                {
                    "turn": n,
                    "question": t.question,
                    "answer": t.answer,
                    "answered": t.answered,
                    "sources": [asdict(s) for s in t.sources],
                }
                for n, t in enumerate(turns, start=1)
            ],
        }

    @router.delete("/api/v1/conversations/{conversation_id}", status_code=204, tags=["conversations"])
    def delete_conversation(conversation_id: str, caller: ChatCaller, user: str | None = None) -> None:
        chat.delete_conversation(owner_of(caller, user), conversation_id)


def _knowledge_base_routes(router: APIRouter, services: Services, ChatCaller: Any, AdminCaller: Any) -> None:
    @router.get("/api/v1/knowledge-bases", tags=["knowledge"])
    def list_knowledge_bases(caller: ChatCaller) -> list[dict[str, Any]]:
        return [
            {"name": kb.name, "documents": kb.documents, "chunks": kb.chunks, "created_at": kb.created_at.isoformat()}
            for kb in services.knowledge.knowledge_bases()
        ]

    @router.post("/api/v1/knowledge-bases", status_code=201, tags=["knowledge"])
    def create_knowledge_base(body: KnowledgeBaseRequest, caller: AdminCaller) -> dict[str, str]:
        return {"name": services.knowledge.create_knowledge_base(body.name).name}

    @router.patch("/api/v1/knowledge-bases/{kb}", tags=["knowledge"])
    def rename_knowledge_base(kb: str, body: KnowledgeBaseRequest, caller: AdminCaller) -> Any:
        return {"name": services.knowledge.rename_knowledge_base(kb, body.name).name}

    @router.delete("/api/v1/knowledge-bases/{kb}", status_code=204, tags=["knowledge"])
    def delete_knowledge_base(kb: str, caller: AdminCaller) -> None:
        services.knowledge.delete_knowledge_base(kb)


def _document_routes(router: APIRouter, services: Services, uploader: Any, AdminCaller: Any) -> None:
    @router.get("/api/v1/knowledge-bases/{kb}/documents", tags=["knowledge"])
    def list_documents(kb: str, caller: AdminCaller) -> list[dict[str, Any]]:
        return [
            {
                "name": d.name,
                "type": d.kind,
                "size_bytes": d.size_bytes,
                "pages": d.pages,
                "chunks": d.chunk_count,
                "status": d.status,
                "ingested_at": d.updated_at.isoformat(),
            }
            for d in services.knowledge.list_documents(kb)
        ]

    @router.post("/api/v1/knowledge-bases/{kb}/documents", tags=["knowledge"])
    def upload_documents(kb: str, files: Annotated[list[UploadFile], File()], caller: AdminCaller) -> dict[str, Any]:
        """Add or replace documents; the report says per file: ingested, unchanged, duplicate, replaced or failed."""
        services.knowledge.knowledge_base(kb)
        with tempfile.TemporaryDirectory(prefix="ragdesk-upload-") as folder:
            saved = []
            for number, upload in enumerate(files):
                path = Path(folder) / f"{number:05d}"
                with path.open("wb") as out:
                    while block := upload.file.read(1 << 20):
                        out.write(block)
                saved.append((path, upload.filename or f"upload-{number}"))
            report = uploader.ingest_files(saved, kb)
        return {"summary": report.summary(), "files": [asdict(o) for o in report.outcomes]}

    @router.delete("/api/v1/knowledge-bases/{kb}/documents/{name}", status_code=204, tags=["knowledge"])
    def delete_document(kb: str, name: str, caller: AdminCaller) -> None:
        services.knowledge.knowledge_base(kb)
        if not services.knowledge.remove_document(kb, name):
            raise DocumentNotFoundError(f"There is no document named '{name}' in '{kb}'.")


def register_error_handlers(app: Any) -> None:
    """RagdeskError messages are safe to show: 404 for what does not exist (or is not yours), 422 for a name that
    cannot be used, 503 when the model cannot answer now, 400 otherwise."""

    async def handle(request: Request, error: Exception) -> JSONResponse:
        status = 404 if isinstance(error, NOT_FOUND) else 422 if isinstance(error, UNPROCESSABLE) else 400
        headers = {}
        if isinstance(error, ModelUnavailableError | VectorStoreUnavailableError):  # not now: ask again soon
            status, headers = 503, {"Retry-After": "30"}
        elif isinstance(error, BusyError):  # too many customers at once: nothing was answered or stored
            status, headers = 429, {"Retry-After": str(error.retry_after_s)}
        elif isinstance(error, ConversationBusyError):
            status = 409
        metrics.ERRORS.labels(type=type(error).__name__, where="api").inc()
        body = {"error": type(error).__name__, "message": str(error)}
        return JSONResponse(body, status_code=status, headers=headers)

    async def invalid(request: Request, error: Exception) -> Response:
        """FastAPI's 422, without echoing the input back: it may be the very text that cannot be encoded."""
        problems = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in getattr(error, "errors", list)()
        ]
        metrics.ERRORS.labels(type="RequestValidationError", where="api").inc()
        body = {"error": "RequestValidationError", "message": "The request is not valid.", "detail": problems}
        return Response(json.dumps(body, ensure_ascii=True), status_code=422, media_type="application/json")

    app.add_exception_handler(RagdeskError, handle)
    app.add_exception_handler(RequestValidationError, invalid)


async def time_requests(request: Request, call_next: Any) -> Response:
    """Latency per route template (never the raw path: it may carry ids), for every HTTP request."""
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    name = getattr(route, "path", None) or ("/admin" if request.url.path.startswith("/admin") else "/ui")
    metrics.REQUEST_LATENCY.labels(route=name, method=request.method).observe(time.perf_counter() - started)
    return response


def _turn_json(result: TurnResult, conversation_id: str) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "turn": result.turn,
        "answer": result.answer,
        "answered": result.answered,
        "refusal": result.refusal,
        "sources": [asdict(s) for s in result.sources],
        "citations": [asdict(c) for c in result.citations],
    }


def _sse(events: Iterator[TurnEvent], conversation_id: str) -> Iterator[str]:
    def event(name: str, data: Any) -> str:
        return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    try:
        for item in events:
            if isinstance(item, Waiting):
                yield event("queued", {"position": item.position, "estimated_s": round(item.estimated_s, 1)})
            elif isinstance(item, SourcesFound):
                sources = [asdict(s) for s in item.sources]
                yield event("sources", {"conversation_id": conversation_id, "sources": sources})
            elif isinstance(item, AnswerDelta):
                yield event("delta", {"text": item.text})
            elif isinstance(item, TurnResult):
                yield event("done", _turn_json(item, conversation_id))
    except RagdeskError as e:
        metrics.ERRORS.labels(type=type(e).__name__, where="api").inc()
        yield event("error", {"error": type(e).__name__, "message": str(e)})
    except Exception as e:  # the outermost layer, headers already sent: the stream must end with an error event
        logger.exception("streamed chat failed")
        metrics.ERRORS.labels(type=type(e).__name__, where="api").inc()
        yield event("error", {"error": "InternalError", "message": "Something went wrong; please try again."})
