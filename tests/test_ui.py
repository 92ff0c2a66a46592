"""What the UI shows: sources under the answer, document and user text shown literally (no markup runs)."""

from chatbot.ui.rendering import escape_markdown, render_answer
from knowledge.retriever import Source


def test_sources_are_listed_under_the_answer_with_position() -> None:
    shown = render_answer(
        "Within 30 days.", [Source("returns.md", "Returns › Window", "You have **30 days**.", 0.1, "c1")]
    )
    answer, sources = shown.split("**Sources**")
    assert answer.strip() == "Within 30 days."
    assert "returns.md" in sources
    assert "Returns › Window" in sources
    assert "You have 30 days\\." in sources  # emphasis markers removed, text kept


def test_html_in_document_text_is_escaped_when_shown() -> None:
    shown = render_answer("ok", [Source("<img src=x onerror=alert(1)>.md", "", "<script>alert(1)</script>", 0.1, "c")])
    assert "<img" not in shown
    assert "<script" not in shown  # the document's angle brackets are entities: shown as text, never parsed as tags
    assert "&lt;img src=x onerror=alert(1)&gt;.md" in shown
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in shown


def test_escape_markdown_neutralises_links_and_headings() -> None:
    assert escape_markdown("# [click](http://evil)") == "\\# \\[click\\]\\(http\\://evil\\)"


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


def test_a_marker_links_to_its_passage_which_shows_the_whole_snippet_with_the_cited_sentence_marked() -> None:
    snippet = "Lumora Home limited warranty. " + "Filler about nothing. " * 10 + "The kettle has a 2 year warranty."
    shown = render_answer(
        "The warranty is 2 years [1].", [Source("warranty.pdf", "page 2", snippet, 0.1, "c1")], turn=3
    )

    answer, sources = shown.split("**Sources**")
    assert answer.strip() == (
        'The warranty is 2 years <a href="#source-t3-1" class="citation" title="warranty.pdf · page 2">[1]</a>.'
    )
    assert '<details class="source"><summary>1. <strong>warranty.pdf</strong> · page 2 — ' in sources
    assert sources.count("Filler about nothing.") == 6  # the line under the answer: the passage's start
    # the link's target lies inside the closed <details>: following the link opens them
    assert '<a id="source-t3-1"></a>Lumora Home limited warranty\\.' in sources
    assert sources.count("Filler about nothing\\.") == 10  # the whole snippet, not the first 180 characters
    assert "<mark>The kettle has a 2 year warranty\\.</mark>" in sources
    assert sources.count("<mark>") == 1


def test_html_and_markdown_in_source_text_stay_inert_under_a_clickable_marker() -> None:
    source = Source(
        'x" onmouseover="alert(1)\n\n# **bold**.md',
        "[page](javascript:alert(1))",
        "<img src=x onerror=alert(1)> **not bold** [click](http://evil)",
        0.1,
        "c1",
    )
    shown = render_answer("It is <b>fine</b> [1].", [source])

    assert "<img" not in shown
    assert "<b>" not in shown
    assert 'onmouseover="' not in shown  # the quote cannot close the link's title attribute
    assert 'title="x&quot; onmouseover=&quot;alert(1) # **bold**.md · [page](javascript:alert(1))"' in shown
    # the summary is an HTML block: markdown is not parsed there, and the name cannot end it with a blank line
    assert "<summary>1. <strong>x&quot; onmouseover=&quot;alert(1) # **bold**.md</strong> · [page]" in shown
    assert "&lt;img src=x onerror=alert\\(1\\)&gt; not bold \\[click\\]\\(http\\://evil\\)" in shown


def test_a_marker_with_no_such_source_stays_plain_text() -> None:
    sources = [Source(f"doc{n}.md", "", f"Passage {n}.", 0.1, f"c{n}") for n in (1, 2, 3)]
    shown = render_answer("See [7], [0] and [2](http://example.com) but [3][1].", sources, turn=1)

    answer = shown.split("**Sources**")[0]
    # the model's own link is text, its address not clickable (see tests/test_rendering_inert.py)
    assert answer.startswith('See [7], [0] and 2 (http\\://example.com) but <a href="#source-t1-3"')
    assert '<a href="#source-t1-1" class="citation" title="doc1.md">[1]</a>.' in answer
    assert answer.count("<a ") == 2


def test_anchors_differ_between_answers_in_one_chat() -> None:
    sources = [Source("returns.md", "", "You have 30 days.", 0.1, "c1")]
    first, second = (render_answer("30 days [1].", sources, turn=n) for n in (1, 2))
    assert 'href="#source-t1-1"' in first
    assert 'id="source-t2-1"' in second
    # elsewhere (no place in a chat), a hash of the answer and its sources
    assert render_answer("30 days [1].", sources) != render_answer("Thirty days [1].", sources)
