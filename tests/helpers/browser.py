"""Helpers for the real-browser tests: a free port, the app run as a subprocess, Chromium's path, asking a question."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers.paths import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(
    url: str, process: subprocess.Popen, log: Path, attempts: int = 480, path: str = "/healthz"
) -> None:
    """Ask the health path until it answers, pausing by waiting on the process (which also notices an early exit)."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.5)
        if process.poll() is not None:
            raise AssertionError(f"the app exited early:\n{log.read_text()[-3000:]}")
    raise AssertionError(f"the app did not come up:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_app(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    """`python app.py` on a free port with its own data directory; yields its URL, stops it afterwards."""
    port = free_port()
    full_env = {
        **os.environ,
        "RAGDESK_DATA_DIR": str(tmp_path / "data"),
        "RAGDESK_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    log = tmp_path / "app.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def ask(page, question: str, until: tuple[str, ...] = ("Sources",)) -> str:  # type: ignore[no-untyped-def]
    """Send a question; return the chat text after it, once one of `until` shows there (the answer is complete)."""
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()
    # Send is off while the answer is written (the sources are named early): done once it is on again.
    page.wait_for_function(
        "([q, until]) => { const t = document.querySelector('#chat').innerText;"
        " return t.includes(q) && until.some(u => t.split(q).pop().includes(u))"
        " && !document.querySelector('#send').disabled; }",
        arg=[question, list(until)],
    )
    return page.locator("#chat").inner_text().split(question)[-1]


def open_first_citation(chat) -> str:  # type: ignore[no-untyped-def]
    """Click the first [1] in the chat; return the opened passage's text once it shows."""
    marker = chat.locator("a.citation", has_text="[1]").first
    target = marker.get_attribute("href")
    cited = chat.locator(f"details:has({target}) mark").first  # every sentence the answer quotes is marked
    assert not cited.is_visible()  # the sources start collapsed
    marker.click()
    cited.wait_for(state="visible")
    return chat.locator(f"details:has({target})").inner_text()


def post_json(url: str, body: dict[str, Any]) -> Any:
    """POST a JSON body to the running app; its JSON reply (None when empty)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read() or b"null")


def api_chat(app: str, user: str, question: str) -> dict[str, Any]:
    """A question through the REST API, as `user`, in a new conversation."""
    return post_json(f"{app}/api/v1/chat", {"question": question, "user": user})  # type: ignore[no-any-return]
