"""Chunking: split sections into overlapping chunks at paragraph, then sentence (English and Chinese) boundaries."""

from __future__ import annotations

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.loaders import LoadedDocument
from knowledge.service import ChunkDraft
from knowledge.settings import ChunkingSettings

# Coarse to fine: paragraphs, lines, Chinese sentence ends, English sentence ends, clauses, words.
SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]
SNIPPET_CHARS = 400


def build_splitter(cfg: ChunkingSettings) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=cfg.chunk_size,
        chunk_overlap=min(cfg.chunk_overlap, cfg.chunk_size // 2),
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )


def chunk_document(document: LoadedDocument, splitter: RecursiveCharacterTextSplitter) -> list[ChunkDraft]:
    """Chunks whose text starts with the document title and section, so both retrievers see the context."""
    drafts = []
    for section in document.sections:
        header = _header(document.title, section.position)
        for piece in splitter.split_text(section.text):
            drafts.append(
                ChunkDraft(
                    text=f"{header}\n{piece}",
                    metadata={"title": document.title, "position": section.position, "snippet": piece[:SNIPPET_CHARS]},
                )
            )
    return drafts


def _header(title: str, position: str) -> str:
    if not position or position.startswith(title):
        return position or title
    return f"{title} › {position}"
