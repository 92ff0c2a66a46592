"""The admin's Conversations table in a real Chromium: conversations made through the REST API show as rows, the
thumbs-down and unanswered filters narrow them, a bad date is explained, and a row opens its transcript with the
customer's thumbs-down reason and the handed-off turn's no-answer mark."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, api_chat, post_json, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]
SCRIPTED = "You have 30 days from the delivery date to return an item [1]."
REASON = "Too vague <i>really</i>, I wanted the address"
SHOWS_ONLY_THE_UNANSWERED = """() => {
  const rows = document.querySelector('#conversations-table').innerText;
  return rows.includes('local:user:bob') && !rows.includes('local:user:alice');
}"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[str]:
    env = {"RAGDESK_LLM__BACKEND": "fake", "RAGDESK_LLM__FAKE_RESPONSES": json.dumps([SCRIPTED])}
    with running_app(tmp_path, env) as url:
        yield url


def cell(table, text: str):  # type: ignore[no-untyped-def]
    return table.locator('[data-testid^="cell-"]', has_text=text)


def typed(page, elem_id: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Type into a textbox and press Enter (its submit event)."""
    box = page.locator(f"#{elem_id}").locator("textarea, input").first
    box.fill(text)
    box.press("Enter")


def test_conversations_table_filters_and_opens_transcripts(app: str, page, tmp_path: Path) -> None:
    returns = api_chat(app, "alice", "How long do I have to return an item?")
    assert returns["answered"], returns
    rating = {"conversation_id": returns["conversation_id"], "turn": 1, "rating": "down", "reason": REASON}
    post_json(f"{app}/api/v1/feedback", {**rating, "user": "alice"})
    assert not api_chat(app, "bob", "What is the airspeed velocity of an unladen swallow?")["answered"]
    api_chat(app, "carol", "Do you <b>ship</b> to Norway?")

    page.goto(f"{app}/admin/")
    page.get_by_role("tab", name="Conversations").click()
    status, table = page.locator("#conversations-status"), page.locator("#conversations-table")
    status.get_by_text("Page 1 of 1 · 3 conversations").wait_for()
    cell(table, "local:user:carol").wait_for()
    page.screenshot(path=str(tmp_path / "1-table.png"), full_page=True)
    assert "Do you <b>ship</b> to Norway?" in table.inner_text()  # the customer's HTML shows as text
    assert table.locator("b").count() == 0

    page.locator("#conversations-thumbs-down input").check()
    status.get_by_text("Page 1 of 1 · 1 conversation").wait_for()
    assert "local:user:alice" in table.inner_text()
    assert "local:user:bob" not in table.inner_text()
    cell(table, "How long do I have to return an item?").click()
    transcript = page.locator("#admin-transcript")
    transcript.get_by_text("👎 Customer:").wait_for()
    page.screenshot(path=str(tmp_path / "2-thumbs-down-transcript.png"), full_page=True)
    assert REASON in transcript.inner_text()  # shown literally
    assert transcript.locator("i").count() == 0
    assert "No answer" not in transcript.inner_text()

    page.locator("#conversations-thumbs-down input").uncheck()
    status.get_by_text("Page 1 of 1 · 3 conversations").wait_for()
    page.locator("#conversations-unanswered input").check()
    page.wait_for_function(SHOWS_ONLY_THE_UNANSWERED)
    cell(table, "unladen swallow").click()
    transcript.get_by_text("No answer — handed off").wait_for()
    page.screenshot(path=str(tmp_path / "3-handed-off-transcript.png"), full_page=True)

    typed(page, "conversations-from", "2025-02-30")
    status.get_by_text("is not a date").wait_for()
    assert "YYYY-MM-DD" in status.inner_text()
    page.screenshot(path=str(tmp_path / "4-bad-date.png"), full_page=True)
    page.locator("#conversations-from").locator("textarea, input").first.fill("")
    page.locator("#conversations-unanswered input").uncheck()
    status.get_by_text("Page 1 of 1 · 3 conversations").wait_for()
    page.locator("#conversations-search").locator("textarea, input").first.fill("norway")
    page.locator("#conversations-search-button").click()
    status.get_by_text("Page 1 of 1 · 1 conversation").wait_for()
    assert "local:user:carol" in table.inner_text()
    assert "local:user:alice" not in table.inner_text()
    page.screenshot(path=str(tmp_path / "5-search.png"), full_page=True)
