"""The Stop button in a real Chromium, with the bundled model writing a long answer: Stop ends the answer where it
is, frees the model (no answer in progress on the server), keeps what was written as the turn (marked stopped),
and the next question goes through. With one answer at a time, a second customer waits in line, sees their place,
and is answered once the first answer is stopped."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, ask, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]
RAMBLING = "Explain step by step how to descale the Aurora kettle and list every part."


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, bundled_models_dir: Path) -> Iterator[tuple[str, Path]]:
    """(URL, folder) of one app for the module's tests."""
    env = {
        "RAGDESK_MODELS_DIR": str(bundled_models_dir),
        "RAGDESK_GROUNDING__POLICY": "off",  # what the model writes is shown as it comes
        "RAGDESK_LLM__MAX_NEW_TOKENS": "2000",  # about a minute of writing on 2 cores, unless stopped
        "RAGDESK_QUEUE__ANSWERS_AT_ONCE": "1",  # a second customer waits in line
    }
    data = tmp_path_factory.mktemp("stop")
    with running_app(data, env) as url:
        yield url, data


@pytest.fixture
def app_url(app: tuple[str, Path]) -> str:
    return app[0]


def answers_in_progress(url: str) -> int:
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
        return int(json.load(response)["llm"]["batching"]["answers_in_progress"])


def stored_answers(database: Path) -> list[tuple[str, dict]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        rows = connection.execute("select content, extra from messages where role = 'ai' order by id").fetchall()
    return [(content, json.loads(extra)) for content, extra in rows]


def test_stop_ends_the_answer_frees_the_model_and_keeps_what_was_written(app, page, tmp_path: Path) -> None:
    app_url, data = app
    page.goto(app_url)
    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")
    assert not page.locator("#stop").is_visible()  # only while an answer is written

    page.locator("#question textarea").fill(RAMBLING)
    page.locator("#send").click()
    page.locator("#stop").wait_for(state="visible")
    page.wait_for_function(  # a good part of the answer is on screen, and it is still being written
        "([q]) => document.querySelector('#chat').innerText.split(q).pop().length > 300",
        arg=[RAMBLING],
    )
    assert answers_in_progress(app_url) == 1
    page.screenshot(path=str(tmp_path / "before-stop.png"))
    page.locator("#stop").click()

    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")
    assert not page.locator("#stop").is_visible()
    deadline = time.monotonic() + 30
    while answers_in_progress(app_url) and time.monotonic() < deadline:  # the model's slot is freed
        time.sleep(0.2)
    assert answers_in_progress(app_url) == 0
    page.screenshot(path=str(tmp_path / "after-stop.png"))

    ((answer, extra),) = stored_answers(data / "data" / "ragdesk.sqlite3")
    assert extra["stopped"] is True
    assert 150 < len(answer) < 4000  # what was written until Stop, far from the 2,000 tokens asked for
    longest = max(answer.splitlines(), key=len).lstrip("-*0123456789. ")[:60]  # markdown turns list marks to bullets
    assert "".join(longest.split()) in "".join(page.locator("#chat").inner_text().split())

    assert "Sources" in ask(page, "Is return shipping free?")  # and the next question goes through


def test_a_second_customer_sees_their_place_in_line_and_is_answered_when_it_frees(app_url: str, page, tmp_path) -> None:
    page.goto(app_url)
    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")
    page.locator("#question textarea").fill(RAMBLING)
    page.locator("#send").click()
    page.locator("#stop").wait_for(state="visible")

    other = page.context.browser.new_page()  # another customer, another browser
    other.set_default_timeout(60_000)
    other.goto(app_url)
    other.wait_for_function("() => document.querySelector('#send')?.disabled === false")
    other.locator("#question textarea").fill("Is return shipping free?")
    other.locator("#send").click()
    other.locator("#chat").get_by_text("you are number 1 in line").wait_for()
    other.screenshot(path=str(tmp_path / "waiting.png"))

    page.locator("#stop").click()  # the first answer ends: the place frees up
    other.wait_for_function("() => document.querySelector('#send')?.disabled === false")
    assert "Sources" in other.locator("#chat").inner_text()
    assert "in line" not in other.locator("#chat").inner_text()
