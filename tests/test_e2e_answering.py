"""End to end in a real Chromium, with the bundled model writing (grounding policy trim): while an answer is written
the customer sees a typing sign and the sources at once, and cannot send a second question into the void; once
the answer is complete the next question goes through."""

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


@pytest.fixture
def app_url(tmp_path: Path, bundled_models_dir: Path) -> Iterator[str]:
    env = {"RAGDESK_MODELS_DIR": str(bundled_models_dir), "RAGDESK_GROUNDING__POLICY": "trim"}
    with running_app(tmp_path, env) as url:
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
