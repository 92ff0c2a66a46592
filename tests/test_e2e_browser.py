"""End to end in a real Chromium: start the app, upload a document, ask about it, see the answer stream in."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]


RECORD_CHAT_STATES = """() => {
  window.chatStates = [];
  const chat = document.querySelector('#chat');
  new MutationObserver(() => window.chatStates.push(chat.innerText))
    .observe(chat, {subtree: true, childList: true, characterData: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path, attempts: int = 480) -> None:
    """Ask /healthz until it answers, pausing by waiting on the process (which also notices an early exit)."""
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.5)
        if process.poll() is not None:
            raise AssertionError(f"the app exited early:\n{log.read_text()[-3000:]}")
    raise AssertionError(f"the app did not come up:\n{log.read_text()[-3000:]}")


@pytest.fixture
def app_url(tmp_path: Path, bundled_models_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "RAGDESK_DATA_DIR": str(tmp_path / "data"),
        "RAGDESK_MODELS_DIR": str(bundled_models_dir),
        "RAGDESK_PORT": str(port),
        "RAGDESK_LLM__MAX_NEW_TOKENS": "48",
        "HF_HUB_OFFLINE": "1",
    }
    log = tmp_path / "app.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def page(tmp_path: Path):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def test_uploaded_fact_is_answered_with_its_file_as_source(app_url: str, page, tmp_path: Path) -> None:
    fact = tmp_path / "zorblax-loyalty.md"
    fact.write_text(
        "# Zorblax loyalty card\n\nThe Zorblax loyalty card gives 17 percent off every third Tuesday of the month."
    )
    page.goto(app_url)
    page.get_by_role("tab", name="Knowledge").click()
    page.locator("#upload input[type=file]").set_input_files(str(fact))
    page.locator("#upload-button").click()
    page.locator("#upload-report").get_by_text("1 ingested").wait_for()
    page.get_by_role("tab", name="Chat").click()

    question = "What discount does the Zorblax loyalty card give?"
    page.evaluate(RECORD_CHAT_STATES)
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()
    page.wait_for_function("() => document.querySelector('#chat').innerText.includes('Sources')", timeout=180_000)
    final = page.locator("#chat").inner_text()
    page.screenshot(path=str(tmp_path / "answer.png"), full_page=True)

    assert "zorblax-loyalty.md" in final.split("Sources", 1)[1]
    partial_answers = [
        state.split(question, 1)[1].strip()
        for state in page.evaluate("window.chatStates")
        if question in state and "Sources" not in state
    ]
    assert any(partial_answers), "the answer appeared all at once instead of streaming"

    page.reload()
    page.locator("#chat").get_by_text("What discount does the Zorblax loyalty card give?").wait_for()
    assert "zorblax-loyalty.md" in page.locator("#chat").inner_text()
