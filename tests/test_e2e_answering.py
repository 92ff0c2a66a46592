"""End to end in a real Chromium, with the bundled model writing (grounding policy trim): while an answer is written
the customer sees a typing sign and the sources at once, and cannot send a second question into the void; once
the answer is complete the next question goes through. With chain-of-thought turned on in the Prompts tab, the
customer still gets the model's answer (the bundled model ignores the answer tags), not the no-answer reply."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, ask, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]

QUESTION = "Can I return an item after opening it?"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory, bundled_models_dir: Path) -> Iterator[str]:
    """One app for the module's tests, in order: the customer's page first, then the admin turns on
    chain-of-thought."""
    env = {"RAGDESK_MODELS_DIR": str(bundled_models_dir), "RAGDESK_GROUNDING__POLICY": "trim"}
    with running_app(tmp_path_factory.mktemp("answering"), env) as url:
        yield url


def test_while_answering_the_box_waits_and_the_sources_show_before_the_answer(app_url: str, page, tmp_path) -> None:
    page.goto(app_url)
    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")

    page.locator("#question textarea").fill(QUESTION)
    page.locator("#send").click()
    # The typing sign, then the sources by name while the answer is still being written (Send is still off).
    page.wait_for_function(
        "() => { const t = document.querySelector('#chat').innerText;"
        " return t.includes('Sources:') && document.querySelector('#send').disabled; }"
    )
    assert page.locator("#question textarea").is_disabled()
    page.screenshot(path=str(tmp_path / "answering.png"))

    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")  # the answer is complete
    assert page.locator("#chat details").count() >= 1  # its sources, each opening to its passage
    assert not page.locator("#question textarea").is_disabled()

    answer = ask(page, "Is return shipping free?")  # and the next question goes through
    assert "Sources" in answer


def test_with_chain_of_thought_on_the_customer_gets_the_answer_not_the_handoff(app_url: str, page, tmp_path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{app_url}/admin/")
    page.get_by_role("tab", name="Prompts").click()
    page.wait_for_function("() => document.querySelector('#prompt-system textarea').value.includes('{context}')")
    page.locator("#prompt-cot input").check()
    page.locator("#prompt-note").locator("textarea, input").first.fill("reasoning on")
    page.locator("#prompt-save-activate").click()
    page.locator("#prompts-status").get_by_text("v1 · active").wait_for()

    page.get_by_role("tab", name="Chat").click()
    expect(page.locator("#send")).to_be_enabled()
    answer = ask(page, "How long do I have to return an item?")
    page.screenshot(path=str(tmp_path / "chain-of-thought.png"))
    assert "30 days" in answer
    assert "could not find this" not in answer  # the no-answer reply
    assert "Here is what our documents say" not in answer  # nor the passages quoted for want of an answer
    assert "<reasoning>" not in answer
