"""End to end in a real Chromium: clicking an answer's [n] marker opens passage n, on the customer page and in
the widget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, ask, open_first_citation, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]

# With the bundled model the default grounding policy quotes the documents: the answer is the sentence of the sample
# returns-and-refunds.md, section "How to start a return", that says "Return shipping is free for customers...".
QUESTION = "Is return shipping free?"
QUOTED = "Return shipping is free for customers in the European Union and the United Kingdom [1]."


@pytest.fixture
def app_url(tmp_path: Path, bundled_models_dir: Path) -> Iterator[str]:
    env = {"RAGDESK_MODELS_DIR": str(bundled_models_dir), "RAGDESK_LLM__MAX_NEW_TOKENS": "48"}
    with running_app(tmp_path, env) as url:
        yield url


def test_clicking_a_citation_marker_opens_its_passage_with_the_cited_part_marked(
    app_url: str, page, tmp_path: Path
) -> None:
    page.goto(app_url)
    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")  # the page has loaded

    answer = ask(page, QUESTION)
    assert QUOTED in answer

    chat = page.locator("#chat")
    passage = open_first_citation(chat)
    page.screenshot(path=str(tmp_path / "citation.png"))
    assert "returns-and-refunds.md · Returns and refunds › How to start a return" in passage
    assert "Pack the item securely" in passage  # the chunk's text, with the supporting sentence highlighted:
    assert chat.locator("details[open] mark").inner_text().startswith("Return shipping is free for")
    assert chat.locator("details[open]").count() == 1  # only passage 1 opened
    chat.locator("details[open] summary").click()  # the customer closes it again...
    assert chat.locator("details[open]").count() == 0
    chat.locator("a.citation").first.click()  # ...and the marker opens it once more
    chat.locator("details[open] mark").wait_for()

    page.goto(f"{app_url}/embed/")  # the widget: the same chat panel, compact
    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")
    assert QUOTED in ask(page, QUESTION)
    assert "returns-and-refunds.md" in open_first_citation(page.locator("#chat"))
    page.screenshot(path=str(tmp_path / "widget-citation.png"))
