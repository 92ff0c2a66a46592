"""Composition root: Settings() → logging → services → UI + API → serve."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

SAMPLES_DIR = Path(__file__).parent / "knowledge" / "samples"
CHINESE_SAMPLES_DIR = Path(__file__).parent / "knowledge" / "samples_zh"
CHINESE_SAMPLES_KB = "lumora-zh"
logger = logging.getLogger("ragdesk")


def build_web_app(services, pipeline):  # type: ignore[no-untyped-def]
    """FastAPI app with the API routes, and the Gradio pages mounted: the customer's at /."""
    from fastapi import FastAPI

    from chatbot.web.openai_api import build_openai_router
    from chatbot.web.portal import build_portal_router, frame_policy
    from chatbot.web.rest_api import build_api_router, register_error_handlers, time_requests
    from chatbot.web.serving import Draining
    from chatbot.web.upload_limit import UploadLimit

    settings = services.settings
    api = FastAPI(title="RAGDesk", version="1", root_path=settings.root_path)
    api.include_router(build_api_router(services, pipeline))
    api.include_router(build_openai_router(services))
    api.include_router(build_portal_router(settings.portal))
    register_error_handlers(api)
    api.middleware("http")(time_requests)
    api.state.draining = Draining()
    api.middleware("http")(api.state.draining.middleware())
    api.middleware("http")(frame_policy(services.portal_origins.origins))
    api.add_middleware(UploadLimit, max_bytes=settings.max_upload_mb * 2**20)
    return mount_pages(api, services, pipeline)


def mount_pages(api, services, pipeline):  # type: ignore[no-untyped-def]
    """The admin's tabs at /admin (behind the admin login), the portal widget at /embed, the customer's chat at /."""
    import gradio as gr

    from chatbot.access.admin_login import admin_from_header, admin_login
    from chatbot.ui.pages import SOURCES_CSS, ChatUI
    from chatbot.ui.strings import I18N

    settings = services.settings
    ui = ChatUI(services, pipeline, title=settings.portal.title)
    admin = ui.build_admin().queue(default_concurrency_limit=16)
    gr.mount_gradio_app(
        api,
        admin,
        path="/admin",
        footer_links=[],
        show_error=False,
        auth=admin_login(settings),
        auth_dependency=admin_from_header(settings),
        auth_message="RAGDesk administration",
        css=SOURCES_CSS,
        theme=ui.theme,
        i18n=I18N,
        max_file_size=f"{settings.max_file_mb}mb",  # the Knowledge tab's uploads, refused as they stream in
    )
    embed = ui.build_embed().queue(default_concurrency_limit=16)
    page = {"footer_links": [], "show_error": False, "theme": ui.theme, "i18n": I18N}
    gr.mount_gradio_app(api, embed, path="/embed", css=ui.embed_css, **page)
    customer = ui.build().queue(default_concurrency_limit=16)
    return gr.mount_gradio_app(api, customer, path="/", css=SOURCES_CSS, **page)


def ingest_samples_if_empty(services, pipeline) -> None:  # type: ignore[no-untyped-def]
    """On a fresh install: the English samples into the default knowledge base, and the Chinese samples into a
    knowledge base of their own with the Chinese starting template."""
    from ingest.pipeline import expand_paths

    kb = services.settings.default_kb
    existing = {info.name: info for info in services.knowledge.knowledge_bases()}.get(kb)
    if not services.settings.ingest_samples or existing is None or existing.documents:
        return
    report = pipeline.ingest_files(expand_paths([SAMPLES_DIR]), kb)
    logger.info("knowledge base %r was empty: ingested the bundled samples (%s)", kb, report.summary())
    if CHINESE_SAMPLES_KB in {info.name for info in services.knowledge.knowledge_bases()}:
        return
    services.start_knowledge_base(CHINESE_SAMPLES_KB, "中文")
    report = pipeline.ingest_files(expand_paths([CHINESE_SAMPLES_DIR]), CHINESE_SAMPLES_KB)
    logger.info("ingested the Chinese samples into %r (%s)", CHINESE_SAMPLES_KB, report.summary())


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, style: str) -> None:
    handler = logging.StreamHandler()
    formatter = (
        JsonLogFormatter() if style == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve RAGDesk.")
    parser.add_argument("--prepare-only", action="store_true", help="prepare models and samples, then exit")
    args = parser.parse_args(argv)

    from pydantic import ValidationError

    from chatbot.settings import Settings
    from chatbot.wiring import build_services
    from ingest.pipeline import IngestPipeline
    from knowledge.settings import describe_invalid_settings

    try:
        settings = Settings()
    except ValidationError as e:
        print(f"error: invalid settings: {describe_invalid_settings(e)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    services = build_services(settings)
    pipeline = IngestPipeline(services.knowledge)
    ingest_samples_if_empty(services, pipeline)
    if args.prepare_only:
        return 0
    serve(services, pipeline)
    return 0


def serve(services, pipeline) -> None:  # type: ignore[no-untyped-def]
    """Serve until SIGTERM or Ctrl-C; then drain within the shutdown grace period (chatbot/web/serving.py)."""
    import uvicorn

    from chatbot.web.serving import GracefulServer

    settings = services.settings
    app = build_web_app(services, pipeline)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")
    chat, grace_s = services.chat, settings.shutdown_grace_s
    server = GracefulServer(config, app.state.draining, grace_s, chat.interrupt_answers, chat.close_line)
    logger.info("serving on http://%s:%s", settings.host, settings.port)
    server.run()
    logger.info("stopped")


if __name__ == "__main__":
    sys.exit(main())
