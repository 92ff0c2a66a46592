"""The Prompts tab in a real Chromium: edit the template, add and edit examples through their form, turn on
chain-of-thought, preview, try the draft against the live version, save and activate, load the saved version back,
chat without seeing reasoning, roll back, and get the handoff reply."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, ask, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]
SIGN_OFF = "Thank you for choosing Lumora!"
PIRATE = f"You are a cheerful pirate helping customers of {{kb}}. Always end your answer with: {SIGN_OFF}\n{{context}}"
SCRIPTED = "<reasoning>The returns document says thirty days.</reasoning><answer>Ahoy! You have 30 days.</answer>"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[str]:
    env = {"RAGDESK_LLM__BACKEND": "fake", "RAGDESK_LLM__FAKE_RESPONSES": json.dumps([SCRIPTED])}
    with running_app(tmp_path, env) as url:
        yield url


def fill(page, elem_id: str, text: str) -> None:  # type: ignore[no-untyped-def]
    page.locator(f"#{elem_id} textarea, #{elem_id} input").first.fill(text)


def add_example(page, question: str, answer: str) -> None:  # type: ignore[no-untyped-def]
    fill(page, "example-question", question)
    fill(page, "example-answer", answer)
    page.locator("#example-add").click()


def edit_examples(page) -> None:  # type: ignore[no-untyped-def]
    """Through the examples form: a refused example, two added, the first edited, the second moved and back."""
    from playwright.sync_api import expect

    listing, message = page.locator("#example-list"), page.locator("#example-message")
    add_example(page, "Hi?", " ")
    message.get_by_text("An example needs an ideal answer.").wait_for()
    expect(listing.locator("label")).to_have_count(0)
    add_example(page, "Hi?", "Ahoy!")
    listing.get_by_text("1. Hi? → Ahoy!").wait_for()
    expect(page.locator("#example-question textarea")).to_have_value("")  # ready for the next one
    add_example(page, "Bye?", "Fair winds!")
    listing.get_by_text("2. Bye? → Fair winds!").wait_for()

    listing.get_by_text("1. Hi?").click()
    expect(page.locator("#example-answer textarea")).to_have_value("Ahoy!")
    fill(page, "example-answer", "Ahoy, matey!")
    page.get_by_role("button", name="Update example 1").click()
    listing.get_by_text("1. Hi? → Ahoy, matey!").wait_for()
    listing.get_by_text("2. Bye?").click()
    page.locator("#example-up").click()
    listing.get_by_text("1. Bye? → Fair winds!").wait_for()
    page.locator("#example-down").click()
    listing.get_by_text("2. Bye? → Fair winds!").wait_for()
    assert listing.locator("label").all_inner_texts() == ["1. Hi? → Ahoy, matey!", "2. Bye? → Fair winds!"]


def test_prompt_studio_round_trip(app: str, page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{app}/admin/")
    page.get_by_role("tab", name="Prompts").click()
    page.wait_for_function("() => document.querySelector('#prompt-system textarea').value.includes('{context}')")

    fill(page, "prompt-system", "You are a cheerful pirate helping customers of {kb}.\n\n{context}")
    fill(page, "prompt-no-answer", "Arr, not in our charts. Ask a human at help@lumora.example")
    page.locator("#prompt-check").click()
    page.locator("#prompt-message").get_by_text("valid").wait_for()
    fill(page, "prompt-system", "You are a cheerful pirate. {customer}")  # two mistakes at once
    page.locator("#prompt-check").click()
    page.locator("#prompt-message").get_by_text("Unknown placeholder").wait_for()
    assert "no {context} slot" in page.locator("#prompt-message").inner_text()
    fill(page, "prompt-system", PIRATE)
    page.locator("#prompt-check").click()  # valid, with a warning: the model will not reliably sign off
    page.locator("#prompt-message").get_by_text("closing line").wait_for()
    assert SIGN_OFF in page.locator("#prompt-message").inner_text()

    edit_examples(page)
    page.screenshot(path=str(tmp_path / "examples.png"), full_page=True)
    page.get_by_role("tab", name="Chat").click()  # away and back: the draft stays in the editor
    page.get_by_role("tab", name="Prompts").click()
    page.locator("#prompts-status").get_by_text("built-in default").wait_for()
    assert "cheerful pirate" in page.locator("#prompt-system textarea").input_value()
    page.locator("#prompt-cot input").check()
    page.locator("#prompt-preview").click()
    page.wait_for_function("() => document.querySelector('#prompt-rendered textarea').value.includes('Fair winds!')")
    rendered = page.locator("#prompt-rendered textarea").input_value()
    assert "cheerful pirate" in rendered
    assert "Ahoy, matey!" in rendered
    assert "<reasoning>" in rendered
    assert "30 days from the delivery date" in rendered  # real retrieved context

    page.locator("#prompt-try").click()
    # "Ahoy!" is in no document: the grounding check keeps it back; the cited sentence stays
    page.locator("#try-draft").get_by_text("You have 30 days [1].").wait_for()
    assert "returns document says" not in page.locator("#try-draft").inner_text()
    assert "Ahoy!" not in page.locator("#try-draft").inner_text()
    page.locator("#prompt-message").get_by_text("did not end every answer with").wait_for()  # as warned
    fill(page, "prompt-closing-line", SIGN_OFF)  # the closing line does it for certain
    page.locator("#prompt-try").click()
    page.locator("#try-draft").get_by_text(SIGN_OFF).wait_for()
    page.locator("#prompt-message").get_by_text("Both answers are below.").wait_for()
    assert "did not end" not in page.locator("#prompt-message").inner_text()

    fill(page, "prompt-note", "pirate tone")
    page.locator("#prompt-save-activate").click()
    page.locator("#prompts-status").get_by_text("v1 · active").wait_for()
    # the saved version holds the examples, in order: start afresh, then load it back into the editor
    page.locator("#prompts-start input").click()
    page.get_by_role("option", name="English").click()
    page.locator("#prompt-message").get_by_text("Started from the English default").wait_for()
    expect(page.locator("#example-list label")).to_have_count(0)
    page.locator("#prompts-version input").click()
    page.get_by_role("option", name=re.compile("^v1")).click()
    page.locator("#prompts-load").click()
    page.locator("#example-list").get_by_text("2. Bye? → Fair winds!").wait_for()
    assert page.locator("#example-list label").all_inner_texts() == ["1. Hi? → Ahoy, matey!", "2. Bye? → Fair winds!"]

    page.get_by_role("tab", name="Chat").click()
    page.evaluate(
        "() => { window.seen = ''; new MutationObserver(() => window.seen += document.querySelector('#chat').innerText)"
        ".observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true}); }"
    )
    answer = ask(page, "How long do I have to return an item?")
    assert "You have 30 days [1]." in answer
    assert "returns document says" not in page.evaluate("window.seen")  # not even while streaming
    page.locator("#new-conversation").click()  # (with history, the scripted model would also write the rewrite)
    ask(page, "What is the airspeed velocity of an unladen swallow?", until=("not in our charts",))

    page.get_by_role("tab", name="Conversations").click()
    conversations = page.locator("#conversations-table")
    conversations.locator('[data-testid^="cell-"]', has_text="How long do I have").first.click()
    page.locator("#admin-transcript").get_by_text("The returns document says thirty days.").wait_for()
    conversations.locator('[data-testid^="cell-"]', has_text="unladen swallow").first.click()
    page.locator("#admin-transcript").get_by_text("handed off").wait_for()

    page.get_by_role("tab", name="Prompts").click()
    page.locator("#prompt-versions").click()
    page.locator("#prompts-version input").click()
    page.get_by_role("option", name="built-in default").click()
    page.locator("#prompt-activate").click()
    page.locator("#gate-message").get_by_text("Active now: built-in default").wait_for()
    page.locator("#prompt-compare").click()
    page.locator("#prompt-diff").get_by_text("cheerful pirate").first.wait_for()

    page.get_by_role("tab", name="Chat").click()
    page.locator("#new-conversation").click()
    # old behaviour: no chain-of-thought, so the model's tags are not taken apart (its reasoning sentence, with a
    # word no document has, is kept back by the grounding check)
    ask(page, "How long do I have to return an item? Again.", until=("</answer>",))
