"""The ingest pipeline: files (or texts) → loaded, chunked, embedded and written to a knowledge base, with a report."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingest.chunking import build_splitter, chunk_document
from ingest.loaders import SUPPORTED_SUFFIXES, LoadedDocument, Section, UnreadableFileError, load_document
from knowledge.service import KnowledgeService, ProgressCallback

logger = logging.getLogger(__name__)

Status = Literal["ingested", "replaced", "unchanged", "duplicate", "failed"]
MAX_NAME_CHARS = 200


@dataclass(frozen=True)
class FileOutcome:
    name: str
    status: Status
    chunks: int = 0
    detail: str = ""


@dataclass(frozen=True)
class IngestReport:
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing to ingest"


def safe_document_name(raw: str) -> str:
    """The file's own name, without directories or control characters, bounded in length."""
    name = unicodedata.normalize("NFC", re.split(r"[\\/]", raw)[-1])
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().lstrip(".")
    if len(name) > MAX_NAME_CHARS:
        stem, suffix = Path(name).stem, Path(name).suffix[:16]
        name = stem[: MAX_NAME_CHARS - len(suffix)] + suffix
    return name or "unnamed"


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and the supported files inside any folder, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES))
        else:
            files.append(path)
    return files


class IngestPipeline:
    def __init__(self, knowledge: KnowledgeService) -> None:
        self.knowledge = knowledge
        self._splitter = build_splitter(knowledge.settings.chunking)
        self._max_bytes = knowledge.settings.max_file_mb * 1024 * 1024

    def ingest_files(
        self,
        files: list[tuple[Path, str]] | list[Path],
        kb: str,
        on_file: Callable[[int, int, str], None] | None = None,
    ) -> IngestReport:
        """Ingest each file (path, or (path, display name)); one bad file never stops the others."""
        pairs = [(f, f.name) if isinstance(f, Path) else f for f in files]
        outcomes = []
        for index, (path, display_name) in enumerate(pairs):
            if on_file:
                on_file(index, len(pairs), display_name)
            outcomes.append(self._ingest_one_file(path, display_name, kb))
        return IngestReport(outcomes)

    def _ingest_one_file(self, path: Path, display_name: str, kb: str) -> FileOutcome:
        name = safe_document_name(display_name)
        try:
            size = path.stat().st_size
            if size > self._max_bytes:
                raise UnreadableFileError(
                    f"the file is {size / 2**20:.1f} MB; the limit is {self._max_bytes // 2**20} MB"
                )
            return self.ingest_bytes(kb, name, path.read_bytes())
        except UnreadableFileError as e:
            return FileOutcome(name, "failed", detail=str(e))
        except OSError as e:
            return FileOutcome(name, "failed", detail=f"could not read the file: {e.strerror or e}")

    def ingest_bytes(self, kb: str, name: str, data: bytes, progress: ProgressCallback | None = None) -> FileOutcome:
        content_hash = hashlib.sha256(data).hexdigest()
        previous = self.knowledge.registry.find_by_name(kb, name)
        if previous and previous.content_hash == content_hash:
            return FileOutcome(name, "unchanged", previous.chunk_count)
        twin = self.knowledge.registry.find_by_hash(kb, content_hash)
        if twin and twin.name != name:
            return FileOutcome(name, "duplicate", detail=f"same content as '{twin.name}'")
        return self._store(kb, name, content_hash, len(data), load_document(name, data), previous is not None, progress)

    def ingest_text(self, kb: str, name: str, title: str, text: str) -> FileOutcome:
        """Ingest a text that is not a file (e.g. one line of a JSONL corpus); `name` is its identity."""
        data = f"{title}\n{text}".encode()
        content_hash = hashlib.sha256(data).hexdigest()
        previous = self.knowledge.registry.find_by_name(kb, name)
        if previous and previous.content_hash == content_hash:
            return FileOutcome(name, "unchanged", previous.chunk_count)
        document = LoadedDocument(title or name, [Section(text, "")])
        return self._store(kb, name, content_hash, len(data), document, previous is not None, None)

    def _store(
        self,
        kb: str,
        name: str,
        content_hash: str,
        size: int,
        document: LoadedDocument,
        replacing: bool,
        progress: ProgressCallback | None,
    ) -> FileOutcome:
        drafts = chunk_document(document, self._splitter)
        if replacing:
            self.knowledge.remove_document(kb, name)
        info = self.knowledge.add_document(kb, name, content_hash, size, drafts, progress)
        logger.info("ingested document id=%s kb=%s chunks=%d", info.id, kb, info.chunk_count)
        return FileOutcome(name, "replaced" if replacing else "ingested", info.chunk_count)
