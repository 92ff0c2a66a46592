"""A folder of mixed-quality support documents built on the fly (no binaries in the repository)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

TOPICS = ["returns", "shipping", "warranty", "invoices", "gift cards", "store hours", "recycling", "repairs"]


def fact(n: int) -> str:
    """A sentence only document n contains, so a search can prove that document is in."""
    return f"Policy code QX{n:03d}: {TOPICS[n % len(TOPICS)]} requests in district {n} are handled in {n + 2} days."


def write_mixed_corpus(folder: Path, good: int = 42) -> dict[str, str]:
    """`good` readable files in eight formats, then broken ones; returns {broken file name: expected reason}."""
    folder.mkdir(parents=True, exist_ok=True)
    writers = [_md, _txt, _html, _csv, _docx, _pdf, _xlsx, _pptx]
    for n in range(good):
        writers[n % len(writers)](folder, n)
    broken = {
        "corrupt.pdf": (b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage", "corrupt PDF"),
        "locked.pdf": (encrypted_pdf(), "encrypted"),
        "scan.pdf": (scanned_pdf(), "no extractable text"),
        "empty.txt": (b"", "empty"),
        "blank.md": (b" \n\t\n ", "empty"),
        "setup.txt": (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff", "binary"),
        "bomb.docx": (_zip_bomb(), "zip bomb"),
        "sheet.xlsx": (b"PK\x03\x04 not really a workbook", ".xlsx"),
    }
    for name, (data, _) in broken.items():
        (folder / name).write_bytes(data)
    return {name: reason for name, (_, reason) in broken.items()}


def _md(folder: Path, n: int) -> None:
    (folder / f"policy-{n:02d}.md").write_text(f"# Policy {n}\n\n## Details\n\n{fact(n)}\n")


def _txt(folder: Path, n: int) -> None:
    (folder / f"note-{n:02d}.txt").write_bytes(f"Note {n}\n{fact(n)}\n顾客服务说明。\n".encode("gbk"))


def _html(folder: Path, n: int) -> None:
    page = f"<html><head><title>Page {n}</title></head><body><h1>Page {n}</h1><p>{fact(n)}</p></body></html>"
    (folder / f"page-{n:02d}.html").write_text(page)


def _csv(folder: Path, n: int) -> None:
    (folder / f"table-{n:02d}.csv").write_text(f'topic,answer\nintro,Table {n}\npolicy,"{fact(n)}"\n')


def _docx(folder: Path, n: int) -> None:
    import docx

    document = docx.Document()
    document.add_heading(f"Guide {n}", level=1)
    document.add_paragraph(fact(n))
    document.save(str(folder / f"guide-{n:02d}.docx"))


def _pdf(folder: Path, n: int) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, f"Leaflet {n}. {fact(n)}")
    pdf.output(str(folder / f"leaflet-{n:02d}.pdf"))


def _xlsx(folder: Path, n: int) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Policies"
    sheet.append(["topic", "answer"])
    sheet.append([TOPICS[n % len(TOPICS)], fact(n)])
    workbook.save(folder / f"sheet-{n:02d}.xlsx")


def _pptx(folder: Path, n: int) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = f"Training {n}"
    slide.shapes.add_textbox(Inches(1), Inches(2), Inches(8), Inches(2)).text_frame.text = fact(n)
    deck.save(str(folder / f"training-{n:02d}.pptx"))


def encrypted_pdf(user_password: str = "s3cret") -> bytes:
    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.cell(0, 10, "Internal price list")
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(bytes(pdf.output()))))
    writer.encrypt(user_password, owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf() -> bytes:
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    scan = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(scan).text((20, 80), "Returns are accepted within 30 days", fill=0)
    image = io.BytesIO()
    scan.save(image, format="PNG")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=180)
    return bytes(pdf.output())


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (300 * 1024 * 1024))
    return buffer.getvalue()
