"""The Insights tab in a real Chromium, on a running app (real Chroma, a SQLite file, the quote policy): customers'
questions made through the REST API show in the metrics summary and plots, the CSV downloads with the same
numbers, a knowledge gap is answered from the tab and the next customer gets that answer; then a test set is
imported and the evaluation gate in the Prompts tab blocks a worse template until a reason is given."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, api_chat, post_json, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]
SWALLOW = ["What is the airspeed velocity of an unladen swallow?", "How fast does an unladen swallow fly?"]
ANSWER = "An unladen European swallow flies at about 11 metres per second."
TEST_SET = (
    "question,expected_answer,should_refuse\n"
    "How long do I have to return an item?,30 days from the delivery date,\n"
    "Do you sell used cars?,,yes\n"
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"RAGDESK_LLM__BACKEND": "fake", "RAGDESK_GROUNDING__POLICY": "quote"}
    with running_app(tmp_path_factory.mktemp("insights"), env) as url:
        yield url


def test_metrics_plots_csv_and_a_gap_answered_from_the_tab(app: str, page, tmp_path: Path) -> None:
    for user, question in zip(("ann", "bob"), SWALLOW, strict=True):
        assert not api_chat(app, user, question)["answered"]
    returns = api_chat(app, "cat", "How long do I have to return an item?")
    assert returns["answered"]
    post_json(
        f"{app}/api/v1/feedback",
        {"conversation_id": returns["conversation_id"], "turn": 1, "rating": "up", "user": "cat"},
    )

    page.goto(f"{app}/admin/")
    page.get_by_role("tab", name="Insights").click()
    summary = page.locator("#metrics-summary")
    summary.get_by_text("3 questions in 3 conversations").wait_for()
    assert "answered 33%" in summary.inner_text()
    assert "thumbs up 1, down 0" in summary.inner_text()
    page.locator("#plot-volume canvas, #plot-volume svg").first.wait_for()  # Vega drew the plot
    page.screenshot(path=str(tmp_path / "1-insights.png"), full_page=True)

    with page.expect_download() as download:
        page.locator("#metrics-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    total = rows[-1]
    assert (total["day"], total["questions"], total["answered"], total["handed_off"]) == ("total", "3", "1", "2")
    assert (total["thumbs_up"], total["conversations"], total["deflected"]) == ("1", "3", "1")
    assert len(rows) == 31  # the last 30 days, then the total

    gaps = page.locator("#gaps-table")
    page.locator("#gaps-status").get_by_text("1 topic from 2 unanswered questions").wait_for()
    gaps.locator('[data-testid^="cell-"]', has_text="swallow").first.click()
    page.locator("#gap-topic").get_by_text("Asked 2 times").wait_for()
    page.locator("#gap-answer textarea").fill(ANSWER)
    page.locator("#gap-approve").click()
    page.locator("#gap-message").get_by_text("Approved").wait_for()
    page.locator("#gaps-status").get_by_text("No knowledge gaps yet").wait_for()
    assert "approved" in page.locator("#faq-table").inner_text()

    reply = api_chat(app, "dan", "How fast does an unladen swallow fly?")
    assert reply["answered"], reply
    assert "11 metres per second" in reply["answer"]


def test_the_gate_blocks_a_worse_template_until_a_reason_is_given(app: str, page, tmp_path: Path) -> None:
    upload = tmp_path / "tests.csv"
    upload.write_text(TEST_SET, encoding="utf-8")
    page.goto(f"{app}/admin/")
    page.get_by_role("tab", name="Insights").click()
    page.get_by_text("Test sets (the evaluation gate").click()
    page.locator("#testset-file input[type=file]").set_input_files(str(upload))
    page.locator("#testset-import").click()
    page.locator("#testset-message").get_by_text("Imported 2 questions").wait_for()

    page.get_by_role("tab", name="Prompts").click()
    threshold = page.locator("#prompt-threshold input[type=number]")
    threshold.wait_for()
    page.wait_for_function("() => document.querySelector('#prompt-system textarea').value.includes('{context}')")
    threshold.fill("1")
    threshold.press("Enter")
    page.locator("#prompt-note textarea, #prompt-note input").first.fill("strict relevance")
    page.locator("#prompt-save-activate").click()
    message = page.locator("#gate-message")
    message.get_by_text("Not activated").wait_for()
    assert "worse than the active version" in message.inner_text()
    page.screenshot(path=str(tmp_path / "2-gate.png"), full_page=True)
    assert "v0" in message.inner_text() or "v1" in message.inner_text()

    page.locator("#gate-override").click()
    message.get_by_text("Give a reason").wait_for()
    page.locator("#gate-reason textarea, #gate-reason input").first.fill("staging check of the handoff reply")
    page.locator("#gate-override").click()
    message.get_by_text("despite the test").wait_for()
    page.get_by_text("Versions: activate, roll back, compare").click()
    page.locator("#prompt-activations").get_by_text("staging check of the handoff reply").wait_for()
