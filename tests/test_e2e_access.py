"""The Access tab in a real Chromium: with no portal origin allowed it warns, and a portal page that pastes the
snippet is refused; the admin allows the portal's origin in the tab, and the same page, reloaded, chats."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, ask, running_app
from tests.test_e2e_portal import serve_folder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]
QUESTION = "How long do I have to return an item?"


@pytest.fixture
def unconfigured_portal(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(app url, portal url, portal folder): the app as installed, with no portal origin in its settings."""
    folder = tmp_path / "portal"
    folder.mkdir()
    portal_url, server = serve_folder(folder)
    env = {"RAGDESK_LLM__BACKEND": "fake", "RAGDESK_LLM__FAKE_RESPONSES": json.dumps(["You have 30 days."])}
    try:
        with running_app(tmp_path, env) as app_url:
            yield app_url, portal_url, folder
    finally:
        server.shutdown()
        server.server_close()


def embed_policy(app_url: str) -> str:
    with urllib.request.urlopen(f"{app_url}/embed/") as response:
        return response.headers["Content-Security-Policy"]


def open_access_tab(page, app_url: str) -> str:  # type: ignore[no-untyped-def]
    """The admin's Access tab; returns the snippet it shows, once shown."""
    page.goto(f"{app_url}/admin/")
    page.get_by_role("tab", name="Access").click()
    page.locator("#widget-snippet").get_by_text("widget.js").wait_for()
    return page.locator("#widget-snippet .cm-content").inner_text()


def open_widget(page, url: str):  # type: ignore[no-untyped-def]
    """The portal page with the widget opened: (the widget's frame element, its frame once it has loaded)."""
    page.goto(url)
    with page.expect_event("framenavigated", predicate=lambda f: "/embed/" in f.url or f.url.startswith("chrome")):
        page.locator("#ragdesk-button").click()
    element = page.locator("#ragdesk-frame")
    return element, element.element_handle().content_frame()


def test_an_admin_allows_the_portal_origin_in_the_access_tab_and_the_pasted_snippet_then_chats(
    unconfigured_portal, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    app_url, portal_url, folder = unconfigured_portal
    assert embed_policy(app_url) == "frame-ancestors 'self'"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        admin = browser.new_page()
        admin.set_default_timeout(60_000)
        snippet = open_access_tab(admin, app_url)
        admin.locator("#origins-status").get_by_text("No portal origin is allowed yet").wait_for()
        admin.screenshot(path=str(tmp_path / "access-no-origin.png"), full_page=True)
        assert "data-token" not in snippet  # works as pasted, for anonymous visitors
        signed = admin.locator("#widget-snippet-signed .cm-content").inner_text()
        assert 'data-token="<token your portal signs for the signed-in user>"' in signed
        (folder / "help.html").write_text(f"<!doctype html><html><body><h1>Lumora portal</h1>{snippet}</body></html>")

        portal = browser.new_page()
        portal.set_default_timeout(60_000)
        _, frame = open_widget(portal, f"{portal_url}/help.html")
        portal.screenshot(path=str(tmp_path / "portal-refused.png"))
        assert frame.locator("#chat").count() == 0  # Chromium refused to show the chat in the portal's page

        for wrong, message in [("127.0.0.1", "Give the scheme too"), (f"{portal_url}/help.html", "has no path")]:
            admin.locator("#origin-new textarea, #origin-new input").first.fill(wrong)
            admin.locator("#origin-allow").click()
            admin.locator("#origin-message").get_by_text(message).wait_for()
        admin.locator("#origin-new textarea, #origin-new input").first.fill(portal_url + "/")
        admin.locator("#origin-allow").click()
        admin.locator("#origin-message").get_by_text("may now frame the widget").wait_for()
        first_row = [admin.locator(f'#origins [data-testid="cell-0-{column}"]') for column in (0, 1)]
        assert [cell.inner_text().strip() for cell in first_row] == [portal_url, "added by admin"]
        assert "No portal origin" not in admin.locator("#origins-status").inner_text()
        admin.screenshot(path=str(tmp_path / "access-origin-allowed.png"), full_page=True)
        assert embed_policy(app_url) == f"frame-ancestors 'self' {portal_url}"  # no restart

        _, frame = open_widget(portal, f"{portal_url}/help.html")
        answer = ask(frame, QUESTION, until=("returns-and-refunds.md",))
        portal.screenshot(path=str(tmp_path / "portal-chat.png"))
        assert "You have 30 days [1]." in answer

        admin.locator("#origin-choice input").click()
        admin.get_by_role("option", name=portal_url).click()
        admin.locator("#origin-remove").click()
        admin.locator("#origin-message").get_by_text("may no longer frame the widget").wait_for()
        admin.locator("#origins-status").get_by_text("No portal origin is allowed yet").wait_for()
        assert embed_policy(app_url) == "frame-ancestors 'self'"
        browser.close()
