"""End to end in a real Chromium: a model that writes a script, an image with an error handler, a javascript: link, a
markdown image from another server and <documents> tags gets all of it shown as text, on the chat page (while the
answer is written, and reloaded from history), in the widget and in the admin's transcript. Nothing runs, nothing
loads, and the only links in the answer are its [n] markers."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, ask, free_port, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]
QUESTION = "How long do I have to return an item?"
SCRIPT = "<script>window.pwned=1</script>"
IMAGE = '<img src=x onerror="window.pwned=2">'
LINK = "[click](javascript:window.pwned=3)"
# on every page: whether anything the model wrote runs, loads or links in a region of the page
CHECKS = """window.nothingLive = (region) => !window.pwned && !document.querySelector(
  `${region} img[src="x"], ${region} img[src*="pixel.png"], a[href^="javascript:" i], a[href*="pixel.png"]`);"""
# set before the question is sent: whether anything live showed in the chat even for a moment while it was written
WATCH_THE_ANSWER = """() => { window.flagged = false;
  new MutationObserver(() => { if (!window.nothingLive('#chat')) window.flagged = true; })
    .observe(document.querySelector('#chat'), {subtree: true, childList: true, attributes: true}); }"""


def reply(pixel: str) -> str:
    return (
        f"You have 30 days to return an item [1]. {SCRIPT} {IMAGE} {LINK} ![pixel]({pixel}/pixel.png) "
        "<documents>Ignore the documents.</documents>"
    )


@pytest.fixture
def pixel_server() -> Iterator[tuple[str, list[str]]]:
    """(url, the paths it was asked for): another server, whose pixel no page may load."""
    asked: list[str] = []

    class Pixel(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Pixel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def app(tmp_path: Path, pixel_server: tuple[str, list[str]]) -> Iterator[str]:
    env = {
        "RAGDESK_LLM__BACKEND": "fake",
        "RAGDESK_LLM__FAKE_RESPONSES": json.dumps([reply(pixel_server[0])]),
        "RAGDESK_GROUNDING__POLICY": "off",  # what the model writes reaches the page unchecked
    }
    with running_app(tmp_path, env) as url:
        yield url


def assert_shown_as_text(page, region: str, pixel: str) -> None:  # type: ignore[no-untyped-def]
    assert page.evaluate("(region) => window.nothingLive(region)", region)
    links = page.locator(f"{region} a[href]").evaluate_all("(links) => links.map(a => a.getAttribute('href'))")
    assert links, "the answer's [1] marker is a link"
    assert all(href.startswith("#source-") for href in links), links  # the model's own links are none
    text = page.locator(region).inner_text()
    for shown in (SCRIPT, IMAGE, "click (javascript:window.pwned=3)", f"pixel ({pixel}/pixel.png)", "<documents>"):
        assert shown in text


def ask_watched(page, question: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")
    page.evaluate(WATCH_THE_ANSWER)
    ask(page, question)
    assert page.evaluate("window.flagged") is False  # not even while the answer was written


def test_what_the_model_writes_is_shown_as_text_on_every_page(
    app: str, page, pixel_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    pixel, asked = pixel_server
    page.add_init_script(CHECKS)
    page.goto(app)
    ask_watched(page, QUESTION)
    page.screenshot(path=str(tmp_path / "1-chat.png"), full_page=True)
    assert_shown_as_text(page, "#chat", pixel)
    page.reload()  # the conversation again, from history
    page.locator("#chat").get_by_text(SCRIPT).wait_for()
    page.screenshot(path=str(tmp_path / "2-chat-reloaded.png"), full_page=True)
    assert_shown_as_text(page, "#chat", pixel)

    widget = page.context.browser.new_page()  # another visitor, in the widget
    widget.set_default_timeout(60_000)
    widget.add_init_script(CHECKS)
    widget.goto(f"{app}/embed/")
    ask_watched(widget, QUESTION)
    widget.screenshot(path=str(tmp_path / "3-widget.png"), full_page=True)
    assert_shown_as_text(widget, "#chat", pixel)

    page.goto(f"{app}/admin/")
    page.get_by_role("tab", name="Conversations").click()
    page.locator("#conversations-status").get_by_text("2 conversations").wait_for()
    page.locator("#conversations-table").locator('[data-testid^="cell-"]', has_text=QUESTION).first.click()
    page.locator("#admin-transcript").get_by_text(SCRIPT).wait_for()
    page.screenshot(path=str(tmp_path / "4-admin-transcript.png"), full_page=True)
    assert_shown_as_text(page, "#admin-transcript", pixel)
    assert asked == []  # the other server's pixel was never fetched
