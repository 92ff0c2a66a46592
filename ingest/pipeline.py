"""The ingest pipeline: files (or texts) → loaded, chunked, embedded and written to a knowledge base, with a report."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from ingest.chunking import build_splitter, chunk_document
from ingest.cpu_manners import run_as_bulk_work
from ingest.loaders import (
    LoadedDocument,
    Section,
    UnreadableFileError,
    UnsupportedFileTypeError,
    check_supported,
    load_document,
)
from knowledge.errors import RagdeskError
from knowledge.metrics import INGESTED_FILES
from knowledge.registry import READY, DocumentInfo
from knowledge.service import DocumentDraft, KnowledgeService

logger = logging.getLogger(__name__)

Status = Literal["ingested", "replaced", "unchanged", "duplicate", "failed", "skipped"]
MAX_NAME_CHARS = 200
BATCH_CHUNKS = 512


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

    @property
    def skipped(self) -> list[FileOutcome]:
        """Files of a type ingest does not read; each outcome's detail names the types it does."""
        return [o for o in self.outcomes if o.status == "skipped"]

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
    """Files as given, and every file inside any folder, sorted: the pipeline reports those of a type it does
    not read as skipped, with the reason, rather than passing them over in silence. Hidden files and folders
    (.git, .DS_Store) inside a folder are not documents and are left out."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = (p for p in path.rglob("*") if p.is_file())
            files.extend(
                sorted(p for p in inside if not any(part.startswith(".") for part in p.relative_to(path).parts))
            )
        else:
            files.append(path)
    return files


class IngestPipeline:
    """Turns files (or texts) into documents of a knowledge base; see _IngestRun for how a batch is written.

    In a server (an upload) each call computes in a thread of its own at the lowest CPU priority, so that the
    answers being written keep the cores (ingest/cpu_manners.py); `in_bulk_thread=False` computes in the caller's
    thread, for the CLI, whose whole process is bulk work."""

    def __init__(self, knowledge: KnowledgeService, *, in_bulk_thread: bool = True) -> None:
        self.knowledge = knowledge
        self.in_bulk_thread = in_bulk_thread
        self.splitter = build_splitter(knowledge.settings.chunking)
        self.max_bytes = knowledge.settings.max_file_mb * 1024 * 1024

    def ingest_files(
        self,
        files: Sequence[tuple[Path, str] | Path],
        kb: str,
        on_file: Callable[[int, int, str], None] | None = None,
    ) -> IngestReport:
        """Ingest each file (path, or (path, display name)); one bad file never stops the others."""
        pairs = [(f, f.name) if isinstance(f, Path) else f for f in files]
        return self._as_bulk_work(self._ingest_files, pairs, kb, on_file)

    def ingest_texts(self, kb: str, texts: Iterable[tuple[str, str, str]]) -> IngestReport:
        """Ingest (name, title, text) items that are not files, e.g. the lines of a JSONL corpus."""
        return self._as_bulk_work(self._ingest_texts, kb, texts)

    def _as_bulk_work(self, work: Callable[..., IngestReport], *args: Any) -> IngestReport:
        return run_as_bulk_work(work, *args) if self.in_bulk_thread else work(*args)

    def _ingest_files(
        self, pairs: list[tuple[Path, str]], kb: str, on_file: Callable[[int, int, str], None] | None
    ) -> IngestReport:
        run = _IngestRun(self, kb)
        for index, (path, display_name) in enumerate(pairs):
            if on_file:
                on_file(index, len(pairs), display_name)
            run.add_file(path, display_name)
        return run.finish()

    def _ingest_texts(self, kb: str, texts: Iterable[tuple[str, str, str]]) -> IngestReport:
        run = _IngestRun(self, kb)
        for name, title, text in texts:
            run.add_text(name, title, text)
        return run.finish()


class _IngestRun:
    """One ingest call: decides per file (unchanged, duplicate, failed, new, replacing), then writes the new
    documents in shared batches of about BATCH_CHUNKS chunks, so embedding and storage work in large batches."""

    def __init__(self, pipeline: IngestPipeline, kb: str) -> None:
        self.pipeline = pipeline
        self.knowledge = pipeline.knowledge
        self.kb = self.knowledge.knowledge_base(kb).name  # an unknown knowledge base fails before any work
        self.known = self.knowledge.registry.documents_by_name(kb)
        self.hashes = {info.content_hash: info.name for info in self.known.values()}
        self.outcomes: list[FileOutcome | None] = []
        self.pending: list[tuple[int, DocumentDraft]] = []

    def add_file(self, path: Path, display_name: str) -> None:
        name = safe_document_name(display_name)
        try:
            check_supported(name)
            size = path.stat().st_size
            if size > self.pipeline.max_bytes:
                limit = self.pipeline.max_bytes // 2**20
                raise UnreadableFileError(f"the file is {size / 2**20:.1f} MB; the limit is {limit} MB")
            data = path.read_bytes()
            content_hash = hashlib.sha256(data).hexdigest()
            if not self._settled(name, content_hash):
                self._queue(name, content_hash, len(data), load_document(name, data))
        except UnsupportedFileTypeError as e:
            self.outcomes.append(FileOutcome(name, "skipped", detail=str(e)))
        except UnreadableFileError as e:
            self.outcomes.append(FileOutcome(name, "failed", detail=str(e)))
        except OSError as e:
            self.outcomes.append(FileOutcome(name, "failed", detail=f"could not read the file: {e.strerror or e}"))

    def add_text(self, name: str, title: str, text: str) -> None:
        data = f"{title}\n{text}".encode()
        content_hash = hashlib.sha256(data).hexdigest()
        if not self._settled(name, content_hash):
            self._queue(name, content_hash, len(data), LoadedDocument(title or name, [Section(text, "")]))

    def finish(self) -> IngestReport:
        self._flush()
        report = IngestReport([o for o in self.outcomes if o is not None])
        for outcome in report.outcomes:
            INGESTED_FILES.labels(status=outcome.status).inc()
        return report

    def _settled(self, name: str, content_hash: str) -> bool:
        """Record the outcome when nothing needs writing: same file again, or same content under another name."""
        previous = self.known.get(name)
        if previous and previous.content_hash == content_hash:
            self.outcomes.append(FileOutcome(name, "unchanged", previous.chunk_count))
            return True
        twin = self.hashes.get(content_hash)
        if twin is not None and twin != name:
            self.outcomes.append(FileOutcome(name, "duplicate", detail=f"same content as '{twin}'"))
            return True
        return False

    def _queue(self, name: str, content_hash: str, size: int, document: LoadedDocument) -> None:
        if any(draft.name == name for _, draft in self.pending):
            self._flush()  # the same name twice in one call: the later file replaces the earlier one
        chunks = chunk_document(document, self.pipeline.splitter)
        self.hashes[content_hash] = name
        self.outcomes.append(None)
        draft = DocumentDraft(name, content_hash, size, chunks, document.pages)
        self.pending.append((len(self.outcomes) - 1, draft))
        if sum(len(draft.chunks) for _, draft in self.pending) >= BATCH_CHUNKS:
            self._flush()

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        replacing = {draft.name for _, draft in batch if draft.name in self.known}
        for name in replacing:
            self.knowledge.remove_document(self.kb, name)
        stored: list[DocumentInfo | None]
        try:
            stored = list(self.knowledge.add_documents(self.kb, [draft for _, draft in batch]))
        except IntegrityError:
            stored = self._store_one_by_one(batch)
        except Exception as e:
            # Broad on purpose: the embeddings, vector store and database are pluggable backends that each raise
            # their own types (HTTP, torch, Chroma, SQLite); add_documents has left no trace of the batch, and the
            # report must name every file of it as failed rather than lose the other batches of this call.
            logger.exception("could not store a batch of %d documents in kb=%s", len(batch), self.kb)
            stored = [None] * len(batch)
            why = str(e) if isinstance(e, RagdeskError) else type(e).__name__
            error = f"could not be stored ({why}); nothing of it was kept"
            for index, draft in batch:
                self.outcomes[index] = FileOutcome(draft.name, "failed", detail=error)
        for (index, draft), info in zip(batch, stored, strict=True):
            if info is not None:
                self.known[draft.name] = info
                status: Status = "replaced" if draft.name in replacing else "ingested"
                self.outcomes[index] = FileOutcome(draft.name, status, info.chunk_count)

    def _concurrent_outcome(self, draft: DocumentDraft) -> FileOutcome:
        other = self.knowledge.registry.find_by_name(self.kb, draft.name)
        if other is not None and other.status == READY and other.content_hash == draft.content_hash:
            return FileOutcome(draft.name, "unchanged", other.chunk_count, "stored by a concurrent upload")
        detail = "another upload of a document with this name was in progress; try again"
        return FileOutcome(draft.name, "failed", detail=detail)

    def _store_one_by_one(self, batch: list[tuple[int, DocumentDraft]]) -> list[DocumentInfo | None]:
        """A name in the batch was taken meanwhile (a concurrent upload): store the others, report that one."""
        stored: list[DocumentInfo | None] = []
        for index, draft in batch:
            try:
                stored.extend(self.knowledge.add_documents(self.kb, [draft]))
            except IntegrityError:
                self.outcomes[index] = self._concurrent_outcome(draft)
                stored.append(None)
        return stored
