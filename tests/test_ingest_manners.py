"""Ingest leaves the CPU to a server's answers: `python -m ingest` computes on fewer threads whose OpenMP threads
sleep when idle, at the lowest priority, and still ingests on its own when no server runs; an upload to a server
embeds in a thread at the lowest priority."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from pydantic import Field

from chatbot.llm.runtime.cpu_threads import PassingThreadEmbeddings
from ingest.cpu_manners import LOW_NICE, bulk_threads
from ingest.pipeline import IngestPipeline
from knowledge.service import build_knowledge_service
from knowledge.settings import KnowledgeSettings
from tests.helpers.paths import REPO

MANNERS = ["OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "TOKENIZERS_PARALLELISM"]

# Runs ingest/__main__.py exactly as `python -m ingest` does; when it exits, reports the state it ran in.
REPORT_AT_EXIT = """
import atexit, json, os, runpy, sys
def report():
    import torch
    names = ["OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "TOKENIZERS_PARALLELISM"]
    state = {"nice": os.getpriority(os.PRIO_PROCESS, 0), "torch_threads": torch.get_num_threads(),
             "idle": hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(0) == os.SCHED_IDLE}
    print(json.dumps({**state, **{n: os.environ.get(n) for n in names}}))
atexit.register(report)
sys.argv = ["ingest", *sys.argv[1:]]
runpy.run_module("ingest", run_name="__main__", alter_sys=True)
"""


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MANNERS}
    return {**env, "RAGDESK_DATA_DIR": str(tmp_path / "data"), "RAGDESK_EMBEDDINGS__BACKEND": "fake"}


def cli_state(tmp_path: Path, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", REPORT_AT_EXIT, "--knowledge-bases", *args],
        cwd=REPO,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no CPU priority on this platform")
def test_cli_computes_on_half_the_cores_at_low_priority_when_run_as_its_own_process(tmp_path: Path) -> None:
    state = cli_state(tmp_path)
    assert state["idle"] or state["nice"] >= LOW_NICE  # type: ignore[operator]
    assert state["torch_threads"] == bulk_threads()
    assert state["OMP_WAIT_POLICY"] == "PASSIVE"
    assert state["KMP_BLOCKTIME"] == "0"
    assert state["TOKENIZERS_PARALLELISM"] == "false"


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no CPU priority on this platform")
def test_cli_keeps_every_core_and_its_priority_when_asked_for_normal_priority(tmp_path: Path) -> None:
    state = cli_state(tmp_path, "--priority", "normal")
    assert state["nice"] == os.getpriority(os.PRIO_PROCESS, 0)
    assert not state["idle"]
    assert state["OMP_WAIT_POLICY"] is None
    assert state["OMP_NUM_THREADS"] is None


def test_cli_ingests_files_when_no_server_runs(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "kettle.md").write_text("# Kettle\n\nDescale the kettle every four weeks with white vinegar.\n")
    (docs / "toaster.txt").write_text("Empty the toaster's crumb tray once a week.\n")

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ingest", *args],
            cwd=REPO,
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "2 ingested" in cli(str(docs), "--kb", "manuals")
    listed = cli("--list", "--kb", "manuals")
    assert "kettle.md" in listed
    assert "toaster.txt" in listed


class PolicyRecordingEmbeddings(DeterministicFakeEmbedding):
    """Fake vectors; notes the CPU scheduling policy of the thread that computes each batch."""

    policies: list[int] = Field(default_factory=list)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.policies.append(os.sched_getscheduler(0))
        return super().embed_documents(texts)


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="no SCHED_IDLE on this platform")
def test_an_upload_embeds_at_the_lowest_priority_and_leaves_the_request_thread_as_it_was(tmp_path: Path) -> None:
    embeddings = PolicyRecordingEmbeddings(size=16)
    settings = KnowledgeSettings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    knowledge = build_knowledge_service(settings, embeddings=PassingThreadEmbeddings(embeddings))  # as the server
    knowledge.ensure_knowledge_base("default")
    page = tmp_path / "kettle.md"
    page.write_text("# Kettle\n\nDescale the kettle every four weeks with white vinegar.\n")
    before = os.sched_getscheduler(0)

    report = IngestPipeline(knowledge).ingest_files([page], "default")

    assert report.summary() == "1 ingested"
    assert embeddings.policies == [os.SCHED_IDLE]
    assert os.sched_getscheduler(0) == before != os.SCHED_IDLE  # the next request this thread serves is a customer's
