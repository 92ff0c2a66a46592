"""What the UI shows: sources under the answer, document and user text shown literally (no markup runs)."""

from chatbot.ui.rendering import escape_markdown, render_answer
from knowledge.retriever import Source


def test_sources_are_listed_under_the_answer_with_position() -> None:
    shown = render_answer(
        "Within 30 days.", [Source("returns.md", "Returns › Window", "You have **30 days**.", 0.1, "c1")]
    )
    answer, sources = shown.split("**Sources**")
    assert answer.strip() == "Within 30 days."
    assert "returns\\.md" in sources
    assert "Returns › Window" in sources
    assert "You have 30 days\\." in sources  # emphasis markers removed, text kept


def test_html_in_document_text_is_escaped_when_shown() -> None:
    shown = render_answer("ok", [Source("<img src=x onerror=alert(1)>.md", "", "<script>alert(1)</script>", 0.1, "c")])
    assert "<" not in shown  # every angle bracket is an entity: shown as text, never parsed as a tag
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in shown


def test_escape_markdown_neutralises_links_and_headings() -> None:
    assert escape_markdown("# [click](http://evil)") == "\\# \\[click\\]\\(http://evil\\)"


def test_html_written_by_the_model_is_shown_as_text_but_markdown_kept() -> None:
    shown = render_answer("**Yes.** <img src=x onerror=alert(1)> Fish & chips", [])
    assert shown == "**Yes.** &lt;img src=x onerror=alert(1)&gt; Fish &amp; chips"


def test_admin_password_is_checked_against_its_scrypt_hash() -> None:
    from chatbot.access.admin_login import hash_password, verify_password

    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$")
    assert "correct" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("wrong horse battery", stored)
    assert not verify_password("anything", "garbage")


def test_admin_pages_are_closed_off_loopback_without_a_password(make_settings) -> None:
    from chatbot.access.admin_login import admin_login, hash_password

    assert admin_login(make_settings()) is None  # loopback, local development: open
    closed = admin_login(make_settings(host="0.0.0.0"))
    assert closed is not None
    assert not closed("admin", "")
    check = admin_login(make_settings(host="0.0.0.0", admin={"password_hash": hash_password("s3cret-pass")}))
    assert check is not None
    assert check("admin", "s3cret-pass")
    assert not check("admin", "nope")


def test_feedback_goes_to_the_rated_answer_never_to_a_notice_or_the_greeting() -> None:
    import gradio as gr

    from chatbot.settings import PortalSettings
    from chatbot.ui.chat_panel import ChatPanel

    class Recorder:
        def __init__(self) -> None:
            self.rated: list[tuple[int, str, str]] = []

        def feedback(self, owner: str, conversation_id: str, turn: int, rating: str, reason: str) -> None:
            self.rated.append((turn, rating, reason))

    ui = ChatPanel(Recorder(), PortalSettings())  # type: ignore[arg-type]  # the handler needs only feedback()
    shown = [
        {"role": "assistant", "content": "Hi! How can I help?"},  # the widget's greeting
        {"role": "user", "content": "How long do I have to return an item?"},
        {"role": "assistant", "content": "You have 30 days."},
        {"role": "assistant", "content": "Your message is too long (5,000 characters; the limit is 4,000)."},
        {"role": "user", "content": "And refunds?"},
        {"role": "assistant", "content": "Within 5 business days."},
    ]

    def rate(index: int, liked: bool | str) -> None:
        ui._on_feedback("alice", "c1", shown, gr.LikeData(None, {"index": index, "value": "", "liked": liked}))

    rate(0, True)  # the greeting
    rate(3, "Wrong answer")  # the notice: it follows the first answer, which must not take the rating
    assert ui.chat.rated == []  # type: ignore[attr-defined]
    rate(2, True)
    rate(5, "Outdated")
    assert ui.chat.rated == [(1, "up", ""), (2, "down", "Outdated")]  # type: ignore[attr-defined]
