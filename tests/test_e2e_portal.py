"""The widget in a real Chromium: a portal page on another port embeds it with the one-line script; a signed-in
user chats and finds the conversation again on another device; a forged token is refused; a page from an origin
that is not allowed cannot frame it."""

from __future__ import annotations

import functools
import http.server
import json
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatbot.access.identity import sign_portal_token
from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, free_port, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]
SECRET = "portal-signing-secret-for-the-tests"  # 32+ bytes: HS256 wants no shorter key
QUESTION = "How long do I have to return an item?"


def serve_folder(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(app url, portal url, portal folder): the portal is a plain static site on its own port (origin)."""
    folder = tmp_path / "portal"
    folder.mkdir()
    portal_url, server = serve_folder(folder)
    env = {
        "RAGDESK_LLM__BACKEND": "fake",
        "RAGDESK_LLM__FAKE_RESPONSES": json.dumps(["You have 30 days."]),
        "RAGDESK_PORTAL__JWT_SECRET": SECRET,
        "RAGDESK_PORTAL__ALLOWED_ORIGINS": json.dumps([portal_url]),
    }
    try:
        with running_app(tmp_path, env) as app_url:
            yield app_url, portal_url, folder
    finally:
        server.shutdown()
        server.server_close()


def portal_page(folder: Path, name: str, app_url: str, token: str | None) -> str:
    token_attribute = f' data-token="{token}"' if token else ""
    (folder / name).write_text(
        "<!doctype html><html><body><h1>Lumora customer portal</h1>"
        f'<script src="{app_url}/widget.js" data-title="Lumora help" data-color="#aa0000"{token_attribute}>'
        "</script></body></html>"
    )
    return name


def wait_for_feedback(database: Path) -> list[tuple[str, str, str]]:
    """(rating, reason, rated answer) as the app wrote them to its SQLite file, once there are any."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            rows = connection.execute(
                "select rating, reason, content from feedback join messages on messages.id = feedback.message_id"
            ).fetchall()
        if rows:
            return rows
        time.sleep(0.2)
    return []


def open_widget(browser, url: str):  # type: ignore[no-untyped-def]
    page = browser.new_context().new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.locator("#ragdesk-button").click()
    return page, page.frame_locator("#ragdesk-frame")


def test_widget_in_a_portal_page_chats_as_the_signed_in_user(portal, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    app_url, portal_url, folder = portal
    token = sign_portal_token(SECRET, "alice-42", "Alice")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page, frame = open_widget(browser, f"{portal_url}/{portal_page(folder, 'home.html', app_url, token)}")
        frame.locator("#chat").get_by_text("Hi Alice!").wait_for()
        assert frame.locator("#embed-title").inner_text() == "Lumora help"
        # the portal's brand colour; waited for, since the button fades into it (a CSS transition)
        expect(frame.locator("#send")).to_have_css("background-color", "rgb(170, 0, 0)")
        frame.locator("#question textarea").fill("x" * 5000)  # over the 4,000-character limit
        frame.locator("#send").click()
        frame.locator("#chat").get_by_text("too long").wait_for()
        notice = frame.locator("#chat .bot-row", has_text="too long").inner_text()
        assert "Hi Alice" not in notice  # its own bubble, not appended to the greeting's
        assert frame.locator("#question textarea").input_value() == "x" * 5000  # kept, to shorten and resend
        frame.locator("#question textarea").fill(QUESTION)
        frame.locator("#send").click()
        frame.locator("#chat").get_by_text("returns-and-refunds.md").first.wait_for()
        expect(frame.locator("#send")).to_be_enabled()  # the answer is complete (its sources show before it is)
        page.screenshot(path=str(tmp_path / "widget.png"))
        frame.locator("#chat").get_by_label("Feedback").last.click()
        frame.locator("#chat button.extra-feedback-option", has_text="Wrong answer").last.dispatch_event("click")
        feedback = set(wait_for_feedback(tmp_path / "data" / "ragdesk.sqlite3"))
        assert feedback == {("down", "Wrong answer", "You have 30 days [1].")}  # on the answer that was rated

        # Another device (a fresh browser context, new token for the same user): the conversation is there.
        later = sign_portal_token(SECRET, "alice-42", "Alice")
        _, frame = open_widget(browser, f"{portal_url}/{portal_page(folder, 'later.html', app_url, later)}")
        frame.locator("#chat").get_by_text(QUESTION).wait_for()
        assert QUESTION in frame.locator("#conversations").inner_text()

        # Bob, on the same browser context as Alice was: none of Alice's conversations.
        bob = sign_portal_token(SECRET, "bob-7", "Bob")
        _, frame = open_widget(browser, f"{portal_url}/{portal_page(folder, 'bob.html', app_url, bob)}")
        frame.locator("#chat").get_by_text("Hi Bob!").wait_for()
        assert QUESTION not in frame.locator("#conversations").inner_text()

        forged = sign_portal_token("not-the-portal-secret-but-as-long-as-one", "alice-42", "Alice")
        _, frame = open_widget(browser, f"{portal_url}/{portal_page(folder, 'forged.html', app_url, forged)}")
        frame.locator("#chat").get_by_text("could not be verified").wait_for()
        expired = sign_portal_token(SECRET, "alice-42", "Alice", ttl_s=-60)
        _, frame = open_widget(browser, f"{portal_url}/{portal_page(folder, 'expired.html', app_url, expired)}")
        frame.locator("#chat").get_by_text("has expired").wait_for()
        browser.close()


def test_a_page_from_another_origin_cannot_frame_the_chat(portal) -> None:
    from playwright.sync_api import sync_playwright

    app_url, _, _ = portal
    other = Path(portal[2].parent / "elsewhere")
    other.mkdir()
    (other / "steal.html").write_text(f'<iframe id="stolen" src="{app_url}/embed/" width="400" height="600"></iframe>')
    other_url, server = serve_folder(other)
    try:
        with urllib.request.urlopen(f"{app_url}/embed/") as response:
            policy = response.headers["Content-Security-Policy"]
        assert policy == f"frame-ancestors 'self' {portal[1]}"
        with urllib.request.urlopen(f"{app_url}/admin/") as response:
            assert response.headers["Content-Security-Policy"] == "frame-ancestors 'self'"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{other_url}/steal.html", wait_until="load")  # the load event waits for the iframe too
            frame = next(f for f in page.frames if f != page.main_frame)
            assert frame.locator("#chat").count() == 0  # Chromium refused to render it
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def test_the_widget_is_a_compact_chat_in_the_company_s_colour(portal, tmp_path: Path) -> None:
    """At the widget's default 400×620: the messages and the question box in view, the conversations behind a
    menu, the greeting without rating buttons; the chat page, the widget's button and its chat in one colour."""
    from playwright.sync_api import expect, sync_playwright

    app_url, portal_url, folder = portal
    (folder / "plain.html").write_text(  # pasted as the Access tab shows it: no token, no colour of its own
        f'<!doctype html><html><body><h1>Portal</h1><script src="{app_url}/widget.js" defer></script></body></html>'
    )
    company_blue = "rgb(37, 99, 235)"  # RAGDESK_PORTAL__THEME_COLOR's default, #2563eb
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page, frame = open_widget(browser, f"{portal_url}/plain.html")
        expect(page.locator("#ragdesk-button")).to_have_css("background-color", company_blue)
        frame.locator("#chat").get_by_text("How can we help").wait_for()
        expect(frame.locator("#send")).to_be_enabled()
        expect(frame.locator("#send")).to_have_css("background-color", company_blue)
        assert frame.locator("#chat button").count() == 0  # the greeting: nothing to rate, copy or flag
        window = page.locator("#ragdesk-frame").bounding_box()
        for element in ("#question textarea", "#send", "#chat"):
            box = frame.locator(element).bounding_box()
            assert box is not None
            assert window["y"] <= box["y"]
            assert box["y"] + box["height"] <= window["y"] + window["height"], element  # in view, no scrolling
        menu = frame.locator("#conversations").bounding_box()
        assert menu is not None
        assert menu["x"] + menu["width"] <= window["x"]  # behind the menu, off to the side
        page.screenshot(path=str(tmp_path / "widget-compact.png"))

        frame.locator("#question textarea").fill(QUESTION)
        frame.locator("#send").click()
        frame.locator("#chat").get_by_text("returns-and-refunds.md").first.wait_for()
        expect(frame.locator("#send")).to_be_enabled()
        assert frame.locator("#chat").get_by_label("Feedback").count() == 1  # the answer can be rated
        height = frame.locator("body").evaluate("() => document.documentElement.scrollHeight")
        assert height <= window["height"] + 1, height  # nothing below the frame's edge, with an answer shown
        page.screenshot(path=str(tmp_path / "widget-answer.png"))
        frame.get_by_role("button", name="Toggle Sidebar").click()
        frame.locator("#conversations").get_by_text(QUESTION).wait_for()
        expect(frame.locator("#conversations")).to_be_in_viewport()  # waits while the menu slides in
        page.screenshot(path=str(tmp_path / "widget-menu.png"))

        chat_page = browser.new_page()
        chat_page.goto(app_url)
        expect(chat_page.locator("#send")).to_be_enabled()
        expect(chat_page.locator("#send")).to_have_css("background-color", company_blue)
        browser.close()
