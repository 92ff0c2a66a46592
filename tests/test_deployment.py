"""compose.yaml, read as docker compose reads it: two replicas on PostgreSQL and the Chroma server behind a sticky
load balancer, a vLLM service under the gpu profile, every RAGDESK_ variable a real setting; `docker compose
config` accepts the file where docker compose is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chatbot.settings import documented_settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "compose.yaml"
REPLICAS = ("ragdesk-a", "ragdesk-b")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def test_two_replicas_share_postgresql_and_the_chroma_server(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "chroma", "migrate", *REPLICAS, "lb", "vllm"} <= set(services)
    for name in REPLICAS:
        environment = services[name]["environment"]
        assert environment["RAGDESK_DATABASE_URL"].startswith("postgresql+psycopg://ragdesk:")
        assert environment["RAGDESK_DATABASE_URL"].endswith("@postgres:5432/ragdesk")
        assert (environment["RAGDESK_VECTOR_STORE__MODE"], environment["RAGDESK_VECTOR_STORE__HOST"]) == (
            "http",
            "chroma",
        )
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    samples = [services[name]["environment"]["RAGDESK_INGEST_SAMPLES"] for name in REPLICAS]
    assert samples == ["true", "false"]  # one replica fills an empty knowledge base, not both at once
    assert services["migrate"]["command"] == ["python", "-m", "chatbot.migrations", "upgrade"]
    assert services["vllm"]["profiles"] == ["gpu"]


def test_every_ragdesk_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    known = {variable for variable, _, _ in documented_settings()}
    used = {v for service in compose["services"].values() for v in (service.get("environment") or {})}
    assert {v for v in used if v.startswith("RAGDESK_")} <= known


def test_the_chroma_server_matches_the_client(compose: dict[str, Any]) -> None:
    client = re.search(r"^chromadb==([\d.]+)", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    assert client is not None
    assert compose["services"]["chroma"]["image"] == f"chromadb/chroma:{client.group(1)}"


def test_the_load_balancer_is_sticky_and_reaches_both_replicas() -> None:
    config = (REPO / "deploy" / "nginx.conf").read_text()
    assert "ip_hash;" in config
    assert all(f"server {name}:7860;" in config for name in REPLICAS)
    assert "proxy_buffering off;" in config


def compose_command() -> list[str] | None:
    """`docker compose` (v2) where installed, else Debian's `docker-compose` (1.29, which `make test` installs):
    both read the file against the Compose specification without a Docker daemon."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker compose nor docker-compose is installed here")

    def config(file: Path) -> subprocess.CompletedProcess[str]:
        arguments = [*command, "-f", str(file), "--profile", "gpu", "config", "--quiet"]
        environment = {"POSTGRES_PASSWORD": "test", "PATH": "/usr/bin:/bin:/usr/local/bin"}
        return subprocess.run(arguments, capture_output=True, text=True, env=environment, cwd=REPO)

    done = config(COMPOSE)
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "compose.yaml"  # the same file with a misspelt key: the check can fail
    broken.write_text(COMPOSE.read_text().replace("depends_on:", "depends_onn:", 1))
    assert config(broken).returncode != 0
