"""HTTP routes beside the UI (health for now), thin over the services."""

from __future__ import annotations

from fastapi import APIRouter

from chatbot.wiring import Services


def build_api_router(services: Services) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    def healthz() -> dict[str, object]:
        llm = services.chat.llm
        return {
            "status": "ok",
            "llm": {
                "backend": services.settings.llm.backend,
                "model": getattr(llm, "model_name", None),
                "device": getattr(llm, "device", None),
                "quantization": getattr(llm, "quantization", None),
            },
            "knowledge_bases": {kb.name: kb.documents for kb in services.knowledge.knowledge_bases()},
        }

    return router
