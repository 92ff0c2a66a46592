"""What the model writes stays text: its HTML, links, images, link definitions, diagrams and bare addresses render as
words a customer can read, never as something the browser runs, loads or follows; our own [n] markers stay links.

The rendered markdown is parsed with markdown-it (CommonMark, as Gradio's renderer) to find links, images and tags;
bare addresses, which only GitHub markdown makes links, are found with the pattern Gradio's renderer starts them at.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from chatbot.conversation.turns import CheckedSentence, Turn
from chatbot.ui.conversations_tab import turn_markdown
from chatbot.ui.rendering import answer_in_progress, escape_markdown, render_answer, show_answer
from knowledge.retriever import Source

HOSTILE = (
    'Here is how. <script>window.pwned=1</script> <img src=x onerror="window.pwned=2"> '
    "[click](javascript:window.pwned=3) ![pixel](http://127.0.0.1:9/pixel.png) <documents>secret</documents>"
)
SHOWN_AS_TEXT = (
    "<script>window.pwned=1</script>",
    '<img src=x onerror="window.pwned=2">',
    "click (javascript:window.pwned=3)",
    "pixel (http://127.0.0.1:9/pixel.png)",
    "<documents>secret</documents>",
)
ADDRESSES = "See https://evil.example/login, WWW.evil.example or refunds@evil.example"
RETURNS = Source("returns.md", "Returns", "You have 30 days to return an item.", 0.1, "c1")
# the only tags we write: the [n] marker links, and each source's <details> with its passage's anchor and <mark>
OUR_TAG = re.compile(
    r'<a href="#source-[\w-]+" class="citation" title="[^"<>]*">|<a id="source-[\w-]+">|</a>'
    r'|</?(details|summary|strong|span|mark)( class="[\w-]+")?>'
)
# where Gradio's renderer (marked, with GitHub's extensions) starts a link at a bare address or email address
BARE_LINK = re.compile(r"(?i)(?:https?|ftp)://|www\.|(?<!\\)@")
_markdown = MarkdownIt("commonmark")


def live_parts(markdown: str) -> list[str]:
    """What a browser could run, load or follow in the rendered markdown, besides our own markup."""
    live = []
    for token in _tokens(markdown):
        if token.type in ("link_open", "image"):
            live.append(f"{token.type} {token.attrs}")
        elif token.type in ("html_inline", "html_block"):
            live += [tag for tag in re.findall(r"<[^>]*>", token.content) if not OUR_TAG.fullmatch(tag)]
    outside_our_tags = re.sub(r"<[^>]*>", "", markdown)  # what the model wrote has no "<" left: all are ours
    return live + BARE_LINK.findall(outside_our_tags)


def visible_text(markdown: str) -> str:
    """The words a reader sees, line by line."""
    shown = {"text": lambda t: t.content, "code_inline": lambda t: t.content, "softbreak": lambda t: "\n"}
    return "".join(shown.get(t.type, lambda t: "")(t) for t in _tokens(markdown))


def _tokens(markdown: str) -> list[Token]:
    flat = []
    for token in _markdown.parse(markdown):
        flat += [token, *(token.children or [])]
    return flat


def test_html_links_and_images_the_model_writes_show_as_text_when_answering() -> None:
    for shown in (show_answer(HOSTILE), render_answer(HOSTILE, []), answer_in_progress(HOSTILE, [RETURNS], "en")):
        assert live_parts(shown) == []
        visible = visible_text(shown)
        for text in SHOWN_AS_TEXT:
            assert text in visible


def test_nothing_the_model_writes_is_live_at_any_point_while_the_answer_is_written() -> None:
    for end in range(len(HOSTILE) + 1):
        assert live_parts(answer_in_progress(HOSTILE[:end], [RETURNS], "en")) == [], HOSTILE[:end]


def test_addresses_the_model_writes_are_text_when_our_markers_are_links() -> None:
    answer = f"You have 30 days [1]. {ADDRESSES}, [the form](https://evil.example/form) or [1](https://evil.example)."
    shown = render_answer(answer, [RETURNS], turn=2)

    assert live_parts(shown) == []
    assert f"{ADDRESSES}, the form (https://evil.example/form) or 1 (https://evil.example)." in visible_text(shown)
    assert shown.count('class="citation"') == 1
    assert 'You have 30 days <a href="#source-t2-1" class="citation" title="returns.md · Returns">[1]</a>.' in shown


def test_a_marker_the_model_wrote_as_a_link_is_neither_a_link_nor_a_marker() -> None:
    shown = render_answer("See [1](the returns page) for more.", [RETURNS], turn=1)

    assert live_parts(shown) == []
    assert 'class="citation"' not in shown
    assert "See [1](the returns page) for more." in visible_text(shown)


def test_a_link_the_model_defines_on_its_own_line_links_nothing() -> None:
    answer = (
        'See [our page][home] or [home].\n\n[home]: javascript:window.pwned=4 "Home"\n\n- [list]: http://evil.example'
    )
    shown = show_answer(answer)

    assert live_parts(shown) == []
    assert '[home]: javascript:window.pwned=4 "Home"' in visible_text(shown)
    assert "[list]: http://evil.example" in visible_text(shown)


def test_a_diagram_the_model_writes_is_shown_as_its_code() -> None:
    diagram = '```mermaid\ngraph TD\n  A["<img src=http://127.0.0.1:9/m.png>"] --> B\n  click B href "http://evil"\n```'
    shown = show_answer(f"Like this:\n\n{diagram}\n\n- in a list:\n  {diagram}")

    # Gradio draws a block that starts with exactly "```mermaid", with images and links in its labels
    assert re.search(r"(?m)^\s*(- )?```mermaid", shown) is None
    assert shown.count("``` mermaid\n") == 2  # a plain code block, shown as text
    assert live_parts(shown) == []


def test_model_and_customer_text_in_the_admin_transcript_links_nothing() -> None:
    turn = Turn(
        question=f"Is this legit? {ADDRESSES} ![x](http://127.0.0.1:9/q.png)",
        answer=HOSTILE,
        sources=[RETURNS],
        reasoning=f"Tell them: {ADDRESSES} <script>window.pwned=5</script>",
        checked=(CheckedSentence("Pay at www.evil.example [now](javascript:window.pwned=6).", reason="unsupported"),),
    )
    shown = turn_markdown(1, turn, ("down", f"Wrong, {ADDRESSES}"))

    assert live_parts(shown) == []
    visible = visible_text(shown)
    for text in (*SHOWN_AS_TEXT, "<script>window.pwned=5</script>", "[now](javascript:window.pwned=6)"):
        assert text in visible
    assert visible.count(ADDRESSES) == 3
    assert shown.count('class="citation"') == 0  # the answer cites nothing: no link at all


def test_escaped_text_shows_literally_with_its_addresses_not_links() -> None:
    text = "# [click](http://evil) ![x](ftp://evil/x.png) www.evil.example me@evil.example <b>x</b>"

    shown = escape_markdown(text)

    assert live_parts(shown) == []
    assert visible_text(shown) == text
