"""Settings: every one is documented in the README, and nested environment variables reach their section."""

import re

from chatbot.settings import Settings, documented_settings
from tests.helpers.paths import REPO


def test_readme_table_lists_exactly_the_settings() -> None:
    readme = (REPO / "README.md").read_text()
    in_readme = set(re.findall(r"^\| `(RAGDESK_[A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    in_code = {variable for variable, _, _ in documented_settings()}
    assert in_readme == in_code


def test_every_setting_has_a_description() -> None:
    assert all(description for _, _, description in documented_settings())


def test_nested_environment_variables_configure_their_section(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RAGDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RAGDESK_PORT", "9911")
    monkeypatch.setenv("RAGDESK_LLM__BACKEND", "openai-compatible")
    monkeypatch.setenv("RAGDESK_LLM__OPENAI__BASE_URL", "http://vllm:8000/v1")
    monkeypatch.setenv("RAGDESK_RETRIEVAL__K", "5")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.port, settings.llm.backend, settings.retrieval.k) == (9911, "openai-compatible", 5)
    assert settings.llm.openai.base_url == "http://vllm:8000/v1"
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path / 'ragdesk.sqlite3'}"
    assert settings.models_path == tmp_path / "models"


def test_an_invalid_setting_stops_the_app_with_one_line_naming_it(monkeypatch, capsys) -> None:
    from app import main

    monkeypatch.setenv("RAGDESK_LLM__LOCAL__CPU_DTYPE", "float16")

    assert main([]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: invalid settings: RAGDESK_LLM__LOCAL__CPU_DTYPE: Input should be")
    assert "\n" not in error
