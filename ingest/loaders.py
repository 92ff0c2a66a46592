"""Loaders: turn a file into titled sections of text that remember their page, heading or row."""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

SUPPORTED_SUFFIXES = (".pdf", ".docx", ".xlsx", ".pptx", ".txt", ".md", ".markdown", ".html", ".htm", ".csv")
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 200

logger = logging.getLogger(__name__)
Package = TypeVar("Package")


class UnreadableFileError(ValueError):
    """A file that cannot be ingested; the message says why and is safe to show the uploader."""


class UnsupportedFileTypeError(UnreadableFileError):
    """A file of a type ingest does not read (say `program.exe` in a folder): reported as skipped, not failed."""


@dataclass(frozen=True)
class Section:
    text: str
    position: str  # what a citation shows: "page 3", "Returns › Damaged items", "row 12"


@dataclass(frozen=True)
class LoadedDocument:
    title: str
    sections: list[Section]
    pages: int | None = None  # pages of a PDF, slides of a deck, sheets of a workbook


def load_document(name: str, data: bytes) -> LoadedDocument:
    """Parse file bytes by the file's suffix; raise UnreadableFileError with a specific reason."""
    check_supported(name)
    loader = _LOADERS[Path(name).suffix.lower()]
    if not data.strip():
        raise UnreadableFileError("the file is empty")
    document = loader(data, Path(name).stem)
    sections = [s for s in document.sections if s.text.strip()]
    if not sections:
        raise UnreadableFileError("no extractable text (a scanned document needs OCR first)")
    return LoadedDocument(document.title.strip() or Path(name).stem, sections, document.pages)


def check_supported(name: str) -> None:
    """Raise UnsupportedFileTypeError, naming the types ingest reads, when `name`'s suffix is not one of them."""
    suffix = Path(name).suffix.lower()
    if suffix not in _LOADERS:
        raise UnsupportedFileTypeError(
            f"unsupported file type '{suffix or 'none'}' (supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; otherwise the encoding is detected (GBK, Big5,
    Shift-JIS, Latin-1...). Binaries are refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:8192]:
        raise UnreadableFileError("this looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise UnreadableFileError("the text encoding could not be recognised (save it as UTF-8)")
    # Short Chinese passages in GBK decode just as cleanly as Korean (cp949); on a tie, read them as Chinese.
    best = min(matches, key=lambda m: (round(m.chaos, 3), m.encoding not in _CHINESE_ENCODINGS))
    return str(best)


_CHINESE_ENCODINGS = {"gb2312", "gbk", "gb18030", "hz", "big5", "big5hkscs", "cp950"}


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def _load_markdown(data: bytes, stem: str) -> LoadedDocument:
    return _sections_from_headed_text(decode_text(data), stem)


def _sections_from_headed_text(text: str, stem: str) -> LoadedDocument:
    """Split text at markdown headings; each section's position is its heading path."""
    title, path, lines, sections = "", [], [], []  # type: ignore[var-annotated]

    def flush() -> None:
        if "".join(lines).strip():
            sections.append(Section("\n".join(lines).strip(), " › ".join(h for _, h in path)))
        lines.clear()

    for line in text.splitlines():
        match = _HEADING.match(line)
        if not match:
            lines.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), match.group(2)
        title = title or heading
        path = [(lv, h) for lv, h in path if lv < level] + [(level, heading)]
    flush()
    return LoadedDocument(title or stem, sections)


def _load_text(data: bytes, stem: str) -> LoadedDocument:
    return LoadedDocument(stem, [Section(decode_text(data), "")])


def _load_html(data: bytes, stem: str) -> LoadedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(data), "html.parser")
    for tag in soup(["script", "style", "nav", "noscript", "template"]):
        tag.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n{'#' * level} {heading.get_text(' ', strip=True)}\n")
    page_title = soup.title.get_text(strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    for block in soup.find_all(_HTML_BLOCKS):
        block.insert_after("\n")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    text = re.sub(r"\n\s*\n+", "\n\n", soup.get_text())
    document = _sections_from_headed_text(text, stem)
    return LoadedDocument(page_title or document.title, document.sections)


_HTML_BLOCKS = ["p", "li", "div", "tr", "td", "th", "pre", "blockquote", "dt", "dd", "section", "article", "table"]


def _load_csv(data: bytes, stem: str) -> LoadedDocument:
    text = decode_text(data)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise UnreadableFileError(f"not a valid CSV file: {e}") from e
    if not rows:
        return LoadedDocument(stem, [])
    header, body = rows[0], rows[1:]
    sections = [
        Section("; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip()), f"row {i}")
        for i, row in enumerate(body, start=2)
    ]
    return LoadedDocument(stem, sections)


def _check_zip(data: bytes, kind: str) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise UnreadableFileError(f"not a valid {kind} file (corrupt or renamed)") from e
    unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > MAX_UNZIPPED_BYTES or unpacked > MAX_ZIP_RATIO * max(len(data), 1):
        raise UnreadableFileError(f"refused: the {kind} file unpacks to {unpacked // 2**20} MB (zip bomb?)")


def _open_package(open_package: Callable[[io.BytesIO], Package], data: bytes, kind: str) -> Package:
    """Open an Office file (a zip already checked) with its library, or raise UnreadableFileError."""
    try:
        return open_package(io.BytesIO(data))
    except Exception as e:
        # Broad on purpose: python-docx, openpyxl and python-pptx raise many types for a broken package (KeyError,
        # ValueError, lxml's XMLSyntaxError, zlib.error, their own), the bytes are an untrusted upload, and one bad
        # file must become a failed outcome, never stop the others. Only the library call is inside the try; the
        # reason names the type, and the traceback is kept in the log for a bug report.
        logger.info("could not open a %s file", kind, exc_info=True)
        raise UnreadableFileError(f"not a valid {kind} file: {type(e).__name__}") from e


def _load_docx(data: bytes, stem: str) -> LoadedDocument:
    _check_zip(data, ".docx")
    import docx

    document = _open_package(docx.Document, data, ".docx")
    lines = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        level = _docx_heading_level(style)
        lines.append(f"{'#' * level} {paragraph.text}" if level and paragraph.text.strip() else paragraph.text)
    for table in document.tables:
        lines.extend(" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows)
    loaded = _sections_from_headed_text("\n".join(lines), stem)
    title = (document.core_properties.title or "").strip()
    return LoadedDocument(title or loaded.title, loaded.sections)


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def _load_xlsx(data: bytes, stem: str) -> LoadedDocument:
    _check_zip(data, ".xlsx")
    import openpyxl

    workbook = _open_package(lambda f: openpyxl.load_workbook(f, read_only=True, data_only=True), data, ".xlsx")
    sections = []
    for sheet in workbook.worksheets:
        rows = [[("" if v is None else str(v)).strip() for v in row] for row in sheet.iter_rows(values_only=True)]
        rows = [r for r in rows if any(r)]
        if not rows:
            continue
        header, body = rows[0], rows[1:] or [rows[0]]
        for number, row in enumerate(body, start=2):
            text = "; ".join(f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v)
            sections.append(Section(text, f"sheet {sheet.title}, row {number}"))
    sheets = len(workbook.worksheets)
    workbook.close()
    return LoadedDocument(stem, sections, sheets)


def _load_pptx(data: bytes, stem: str) -> LoadedDocument:
    _check_zip(data, ".pptx")
    from pptx import Presentation

    deck = _open_package(Presentation, data, ".pptx")
    sections = []
    for number, slide in enumerate(deck.slides, start=1):
        texts = [shape.text_frame.text for shape in slide.shapes if shape.has_text_frame and shape.text_frame.text]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            texts.append(slide.notes_slide.notes_text_frame.text)
        sections.append(Section("\n".join(texts), f"slide {number}"))
    title = (deck.core_properties.title or "").strip()
    return LoadedDocument(title or stem, sections, len(sections))


def _load_pdf(data: bytes, stem: str) -> LoadedDocument:
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _opens_without_password(reader):
            raise UnreadableFileError("the PDF is encrypted (password protected)")
        pages = [Section(page.extract_text() or "", f"page {i}") for i, page in enumerate(reader.pages, start=1)]
        title = (reader.metadata.title if reader.metadata else None) or ""
    except UnreadableFileError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as e:
        raise UnreadableFileError(f"corrupt PDF: {e}") from e
    return LoadedDocument(str(title) or stem, pages, len(pages))


def _opens_without_password(reader: Any) -> bool:
    """An owner-password-only PDF opens with the empty user password; anything else stays locked."""
    from pypdf.errors import PyPdfError

    try:
        return bool(reader.decrypt(""))
    except (PyPdfError, NotImplementedError):
        return False


_LOADERS: dict[str, Callable[[bytes, str], LoadedDocument]] = {
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".xlsx": _load_xlsx,
    ".pptx": _load_pptx,
    ".txt": _load_text,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".csv": _load_csv,
}
