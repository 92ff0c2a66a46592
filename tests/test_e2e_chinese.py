"""End to end in a real Chromium set to Chinese, on the embedded default (the bundled models): the chat page and the
widget speak Chinese, and a Chinese question gets a Chinese reply quoted from the documents, whose [1] opens the
passage it came from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, ask, open_first_citation, running_app

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]

# The bundled samples hold a Chinese FAQ (knowledge/samples/faq-zh.md) beside the English documents.
QUESTION = "商品有破损怎么办？"


@pytest.fixture
def app_url(tmp_path: Path, bundled_models_dir: Path) -> Iterator[str]:
    with running_app(tmp_path, {"RAGDESK_MODELS_DIR": str(bundled_models_dir)}) as url:
        yield url


@pytest.fixture
def chinese_page():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(locale="zh-CN").new_page()
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def _chinese_reply_with_its_passage(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => document.querySelector('#send')?.disabled === false")
    assert page.locator("#send").inner_text().strip() == "发送"
    assert page.locator("#question textarea").get_attribute("placeholder").startswith("请输入您的问题")

    answer = ask(page, QUESTION, until=("来源",))

    assert "根据《faq-zh》的说明" in answer
    assert "签收后四十八小时内联系客服" in answer
    assert "[1]" in answer
    passage = open_first_citation(page.locator("#chat"))
    assert "faq-zh.md" in passage
    assert "商品破损" in passage


def test_a_chinese_customer_gets_chinese_pages_and_a_quoted_chinese_reply(
    app_url: str, chinese_page, tmp_path: Path
) -> None:
    chinese_page.goto(app_url)
    _chinese_reply_with_its_passage(chinese_page)
    chinese_page.screenshot(path=str(tmp_path / "chat-zh.png"))

    chinese_page.goto(f"{app_url}/embed/")
    _chinese_reply_with_its_passage(chinese_page)
    chinese_page.screenshot(path=str(tmp_path / "widget-zh.png"))
