"""End to end in a real Chromium: start the app, upload a document, ask about it, see the answer stream in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, running_app

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


@pytest.fixture
def app_url(tmp_path: Path, bundled_models_dir: Path) -> Iterator[str]:
    env = {"RAGDESK_MODELS_DIR": str(bundled_models_dir), "RAGDESK_LLM__MAX_NEW_TOKENS": "48"}
    with running_app(tmp_path, env) as url:
        yield url


def test_uploaded_fact_is_answered_with_its_file_as_source(app_url: str, page, tmp_path: Path) -> None:
    fact = tmp_path / "zorblax-loyalty.md"
    fact.write_text(
        "# Zorblax loyalty card\n\nThe Zorblax loyalty card gives 17 percent off every third Tuesday of the month."
    )
    page.goto(f"{app_url}/admin/")
    page.get_by_role("tab", name="Knowledge").click()
    page.locator("#upload input[type=file]").set_input_files(str(fact))
    page.locator("#upload-button").click()
    page.locator("#upload-report").get_by_text("1 ingested").wait_for()

    held = []  # the page's load event (who is chatting), held back until the Send button has been looked at
    page.route("**/queue/join*", lambda route: held.append(route) if not held else route.continue_())
    page.goto(app_url)  # the customer page: chat only
    page.locator("#question textarea").wait_for()
    for _ in range(200):  # the load event's request reaches the handler while Playwright waits
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the page sent no load event"
    assert page.locator("#send").is_disabled()  # a question sent now could not be answered for anyone
    held[0].continue_()
    page.unroute("**/queue/join*")
    page.wait_for_function("() => !document.querySelector('#send').disabled")
    assert page.get_by_role("tab", name="Knowledge").count() == 0

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
