"""How answers and document text are shown: [n] markers that open their passage, sources under the answer,
everything from outside shown literally.

Only our own markup is HTML: the marker links, and a <details> per source whose content holds an anchor, so that
following a marker's link opens the passage (the browser reveals a fragment's closed <details> ancestors; no script
needed). Gradio's sanitizer keeps a, details, summary, mark, id, href, class and title, and strips scripts and event
handlers, but it keeps <img src> and the links markdown makes. So the only links on the page are ours: whatever the
model writes (HTML, a link, an image, a bare address) shows as text, and an address is never clickable, since a
model inventing a link to elsewhere is a phishing risk for a support desk. Document text inside an HTML block is
HTML-escaped (markdown is not parsed there); elsewhere it goes through escape_markdown.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import defaultdict
from typing import Any

from chatbot.ui.strings import SOURCES_HEADING, TYPING
from knowledge.retriever import Source

PREVIEW_CHARS = 180  # of a passage, on its collapsed source line (opened, the whole snippet shows below)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_MARKDOWN_EMPHASIS = re.compile(r"(\*\*|__|`)")
_MARKER = re.compile(r"\[(\d+)\](?!\\?\()")  # [n], but not a markdown link's text "[n](url)", even made inert
# a markdown link or image, [text](address "title") or ![alt](address), in its common one-line shape
_LINK = re.compile(r"!?\[([^\[\]\n]*)\]\(\s*<?([^\s()<>]*)>?(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*\)")
_LINK_SYNTAX = re.compile(r"\](?=[(:])")  # what any other link needs: "](address)", or a "[label]: address" line
_DIAGRAM = re.compile(r"```(?=mermaid)")  # Gradio draws such a block, whose labels and clicks may be links
_AUTOLINK = re.compile(r"(?i)(?:https?|ftp)(?=://)|www(?=\.)|(?=@)")  # where GitHub markdown starts a bare link
_SENTENCE_END = re.compile(r"((?<=[.!?])\s+|(?<=[。！？])|\n\s*\n)")  # a wrapped line goes on
_TOKEN = re.compile(r"[^\W\d_]{3,}|\d+|[\u4e00-\u9fff]")
_COMMON = frozenset(
    re.findall(r"\S+", "the and for you your our are with this that from can will have has was were its")
)


def escape_markdown(text: str) -> str:
    """Show document or user text literally: no markdown formatting, no HTML, no link."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", _escape_html(" ".join(text.split())))
    return _inert_addresses(text)


def show_answer(answer: str) -> str:
    """The model's answer keeps its markdown (lists, bold) but nothing it writes is live: its HTML shows as text,
    its links and images as their text and address, and no address is clickable."""
    text = _LINK_SYNTAX.sub("]\\\\", _escape_html(_LINK.sub(_link_as_text, answer)))
    return _inert_addresses(_DIAGRAM.sub("``` ", text))  # "``` mermaid" is a code block, shown as text


def _link_as_text(link: re.Match[str]) -> str:
    text, address = link[1].strip(), link[2]
    if not address or address == text:
        return text or address
    return f"{text} ({address})" if text else address


def _inert_addresses(text: str) -> str:
    """A backslash before the ":" of "http://", the "." of "www." and each "@" (an email address): shown the same, but
    never made a link."""
    return _AUTOLINK.sub(lambda start: start[0] + "\\", text)


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def answer_in_progress(streamed: str, sources: list[Source] | None, language: str) -> str:
    """What a customer sees while the answer is written: the typing sign until the first words, and the sources
    by name as soon as retrieval found them."""
    shown = show_answer(streamed) if streamed else f"*{TYPING.get(language, TYPING['en'])}*"
    if not sources:
        return shown
    heading = SOURCES_HEADING.get(language, SOURCES_HEADING["en"])
    names = " · ".join(dict.fromkeys(escape_markdown(s.document) for s in sources))
    return f"{shown}\n\n**{heading}:** {names}"


def render_answer(answer: str, sources: list[Source], turn: int | None = None, language: str = "en") -> str:
    """The answer with its [n] markers as links to source n, then the sources, each opening to its passage.
    `turn` (the answer's place in the chat) keeps anchors unique on the page; without it, a hash of the answer."""
    if not sources:
        return show_answer(answer)
    key = f"t{turn}" if turn is not None else _digest(answer, sources)
    heading = SOURCES_HEADING.get(language, SOURCES_HEADING["en"])
    lines = [_linked_markers(show_answer(answer), sources, key), "", f"**{heading}**"]
    cited = _citing_sentences(answer)
    for number, source in enumerate(sources, start=1):
        lines += ["", _source_block(number, source, _anchor(key, number), cited[number])]
    return "\n".join(lines)


def _linked_markers(shown: str, sources: list[Source], key: str) -> str:
    """Each [n] that names a source becomes a link to its passage; any other [n] stays as the model wrote it."""

    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if not 0 < number <= len(sources):
            return match.group(0)
        title = _html_text(_where(sources[number - 1]))
        return f'<a href="#{_anchor(key, number)}" class="citation" title="{title}">[{number}]</a>'

    return _MARKER.sub(link, shown)


def _source_block(number: int, source: Source, anchor: str, cited: list[str]) -> str:
    """A source line with the passage's start, opening to the whole passage with the part the answer cites
    marked. The summary is raw HTML (escaped as HTML); the passage, between blank lines, is markdown (escaped as
    markdown)."""
    plain = _MARKDOWN_EMPHASIS.sub("", source.snippet)
    summary = f"{number}. <strong>{_html_text(source.document)}</strong>"
    if source.position:
        summary += f" · {_html_text(source.position)}"
    preview = _html_text(plain[:PREVIEW_CHARS]) + ("…" if len(plain) > PREVIEW_CHARS else "")
    summary += f' — <span class="source-preview">{preview}</span>'  # a page's CSS may hide it once opened
    passage = _highlighted(plain, cited)
    return f'<details class="source"><summary>{summary}</summary>\n\n<a id="{anchor}"></a>{passage}\n\n</details>'


def _highlighted(text: str, cited: list[str]) -> str:
    """The passage as markdown-escaped text, with the sentence closest to each citing sentence in <mark>."""
    parts = _SENTENCE_END.split(text)
    sentences = parts[::2]
    marked = {_closest(sentences, sentence) for sentence in cited}
    shown = []
    for index, sentence in enumerate(sentences):
        escaped = escape_markdown(sentence)
        shown.append(f"<mark>{escaped}</mark>" if index in marked and escaped else escaped)
        if index < len(sentences) - 1:
            shown.append(" " if parts[2 * index + 1] else "")  # no space after a Chinese sentence's end
    return "".join(shown).strip()


def _closest(sentences: list[str], cited: str) -> int | None:
    """The passage sentence sharing most words with the citing sentence; None when none shares any."""
    wanted = _tokens(cited)
    overlaps = [len(wanted & _tokens(sentence)) for sentence in sentences]
    best = max(range(len(sentences)), key=overlaps.__getitem__, default=None)
    return best if best is not None and overlaps[best] > 0 else None


def _citing_sentences(answer: str) -> defaultdict[int, list[str]]:
    """For each source number, the answer's sentences that cite it (markers removed)."""
    cited: defaultdict[int, list[str]] = defaultdict(list)
    for sentence in _SENTENCE_END.split(answer)[::2]:
        for number in {int(n) for n in _MARKER.findall(sentence)}:
            cited[number].append(_MARKER.sub("", sentence))
    return cited


def _tokens(text: str) -> set[str]:
    return {t for t in _TOKEN.findall(text.lower()) if t not in _COMMON}


def _where(source: Source) -> str:
    return f"{source.document} · {source.position}" if source.position else source.document


def _html_text(text: str) -> str:
    """Text for inside our HTML: one line (a blank line would end the HTML block), every markup character escaped."""
    return html.escape(" ".join(text.split()), quote=True)


def _anchor(key: str, number: int) -> str:
    return f"source-{key}-{number}"


def _digest(answer: str, sources: list[Source]) -> str:
    text = "\0".join([answer, *(s.chunk_id for s in sources)])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def admin_name(request: Any) -> str:
    """Who is signed in to the admin pages, as records keep it (the password login's or proxy's user, else admin)."""
    return (getattr(request, "username", None) or "admin")[:200]
