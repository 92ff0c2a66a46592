"""SIGTERM with answers being written, against the real app and the bundled model: the server stops accepting,
sends the customer waiting in line away, lets a short answer finish, stops a long one within the grace period (the
customer told to ask again, nothing of it saved), and exits 0 within the bound."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.browser import free_port, wait_until_healthy
from tests.helpers.paths import REPO

pytestmark = pytest.mark.slow
GRACE_S = 4


def _stream(url: str, path: str, body: dict[str, Any], events: list[tuple[str, Any]], first: threading.Event) -> None:
    """Read a server-sent event stream into `events` (name, data); `first` is set at the first answer text."""
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=120) as response:
        name = "message"
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append((name, data if data == "[DONE]" else json.loads(data)))
                if name in ("delta", "message", "queued"):
                    first.set()
                name = "message"


def _start(tmp_path: Path, bundled_models_dir: Path) -> tuple[subprocess.Popen, str, Path]:
    port, log = free_port(), tmp_path / "app.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "RAGDESK_DATA_DIR": str(tmp_path / "data"),
        "RAGDESK_PORT": str(port),
        "RAGDESK_MODELS_DIR": str(bundled_models_dir),
        "RAGDESK_GROUNDING__POLICY": "off",  # the model writes (and keeps writing) the answer
        "RAGDESK_LLM__MAX_NEW_TOKENS": "2000",
        "RAGDESK_SHUTDOWN_GRACE_S": str(GRACE_S),
        "RAGDESK_QUEUE__ANSWERS_AT_ONCE": "2",  # a third customer waits in line
    }
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, process, log)
    return process, url, log


def test_sigterm_finishes_short_answers_stops_long_ones_and_exits_0_within_the_bound(
    tmp_path: Path, bundled_models_dir: Path
) -> None:
    process, url, log = _start(tmp_path, bundled_models_dir)
    try:
        long_events: list[tuple[str, Any]] = []
        short_events: list[tuple[str, Any]] = []
        long_started, short_started = threading.Event(), threading.Event()
        question = {"question": "How do I descale the kettle?", "user": "ann", "stream": True}
        long_reader = threading.Thread(target=_stream, args=(url, "/api/v1/chat", question, long_events, long_started))
        long_reader.start()
        assert long_started.wait(120), log.read_text()[-2000:]
        short = {
            "model": "default",
            "stream": True,
            "max_tokens": 24,
            "messages": [{"role": "user", "content": "Is return shipping free?"}],
        }
        short_reader = threading.Thread(
            target=_stream, args=(url, "/v1/chat/completions", short, short_events, short_started)
        )
        short_reader.start()
        assert short_started.wait(60)
        queued_events: list[tuple[str, Any]] = []
        queued, in_line = {"question": "Is return shipping free?", "user": "cy", "stream": True}, threading.Event()
        queued_reader = threading.Thread(target=_stream, args=(url, "/api/v1/chat", queued, queued_events, in_line))
        queued_reader.start()
        assert in_line.wait(60)
        assert queued_events[0][0] == "queued"

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=GRACE_S + 20)  # the bound, as a hang guard (how fast: not timed here)
        for reader in (long_reader, short_reader, queued_reader):
            reader.join(10)
    finally:
        if process.poll() is None:
            process.kill()

    assert code == 0, log.read_text()[-3000:]
    assert short_events[-1] == ("message", "[DONE]")  # the short answer finished within the grace period
    name, data = long_events[-1]
    assert name == "error"
    assert "restarting" in data["message"]
    assert queued_events[-1][0] == "error"  # the customer in line is sent away, not left hanging
    assert "restarting" in queued_events[-1][1]["message"]
    conversation = long_events[0][1]["conversation_id"]
    restarted, url, log = _start(tmp_path, bundled_models_dir)
    try:
        turns = httpx.get(f"{url}/api/v1/conversations/{conversation}", params={"user": "ann"}, timeout=30).json()
    finally:
        restarted.terminate()
        restarted.wait(30)
    assert turns["turns"] == []  # the stopped answer was not saved half-written
