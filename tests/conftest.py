"""Shared fixtures: real small components (bundled embeddings, tiny or bundled LLM, temp Chroma and SQLite)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

for _name in [n for n in os.environ if n.startswith("RAGDESK_")]:
    del os.environ[_name]
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from chatbot.settings import Settings  # noqa: E402
from chatbot.wiring import Services, build_services  # noqa: E402
from ingest.pipeline import IngestPipeline  # noqa: E402
from knowledge.embeddings import build_embeddings  # noqa: E402
from knowledge.settings import EmbeddingSettings  # noqa: E402


@pytest.fixture(autouse=True)
def _torch_threads_given_back() -> Iterator[None]:
    """A local model on the CPU takes the cores for its own thread (chatbot/llm/runtime/cpu_threads.py); later
    tests get them back."""
    import torch

    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def embeddings() -> Any:
    """The bundled all-MiniLM-L6-v2, loaded once."""
    return build_embeddings(EmbeddingSettings())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked both_databases runs on SQLite and on PostgreSQL (its services too, through make_settings)."""
    if "database_url" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster for the session (scripts/throwaway_postgres.py)."""
    from scripts.throwaway_postgres import postgres_binaries, throwaway_postgres

    if postgres_binaries() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql): the PostgreSQL half is skipped")
    with throwaway_postgres() as url:
        yield url


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test's own database: a SQLite file, or a fresh database on the session's PostgreSQL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'ragdesk.sqlite3'}"
        return
    from sqlalchemy import create_engine, text

    server = request.getfixturevalue("postgres_server")
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "llm": {"backend": "fake"}, **overrides}
        values.setdefault("database_url", database_url)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def make_services(make_settings: Callable[..., Settings], embeddings: Any) -> Iterator[Callable[..., Services]]:
    built: list[Services] = []

    def make(chat_model: Any = None, **overrides: Any) -> Services:
        built.append(build_services(make_settings(**overrides), llm=chat_model, embeddings=embeddings))
        return built[-1]

    yield make
    for services in built:
        services.close()


@pytest.fixture
def services(make_services: Callable[..., Services]) -> Services:
    return make_services()


@pytest.fixture
def pipeline(services: Services) -> IngestPipeline:
    return IngestPipeline(services.knowledge)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random-weight Llama with a word-level tokenizer and a chat template (~100 KiB)."""
    from tests.helpers.tiny_model import write_tiny_model

    return write_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def bundled_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bundled SmolLM2 converted once per test session (about a minute on 2 cores)."""
    from chatbot.llm.local_model import prepare_bundled_model

    path = tmp_path_factory.mktemp("models")
    prepare_bundled_model(path)
    return path


@pytest.fixture
def page():  # type: ignore[no-untyped-def]
    """A page in Debian's Chromium driven by Playwright (tests using it skip when chromium is missing)."""
    from playwright.sync_api import sync_playwright

    from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        yield page
        browser.close()
