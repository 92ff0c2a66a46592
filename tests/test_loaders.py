"""Loaders keep positions for every format and refuse bad files with a specific reason."""

import io
import zipfile

import pytest

from ingest.chunking import build_splitter, chunk_document
from ingest.loaders import UnreadableFileError, load_document
from ingest.pipeline import safe_document_name
from knowledge.settings import ChunkingSettings
from tests.helpers.corpus import encrypted_pdf, scanned_pdf
from tests.helpers.paths import SAMPLES


@pytest.mark.parametrize(
    ("name", "position"),
    [
        ("warranty.pdf", "page 1"),
        ("aurora-kettle-manual.pdf", "page 2"),
        ("account-and-password.docx", "Account and password help › Resetting a forgotten password"),
        ("returns-and-refunds.md", "Returns and refunds › Damaged or defective items"),
        ("shipping.html", "Shipping and delivery › International shipping"),
        ("contact-channels.csv", "row 3"),
        ("faq-zh.md", "常见问题（中文） › 忘记密码怎么办？"),
    ],
)
def test_sample_documents_load_with_positions_when_parsed(name: str, position: str) -> None:
    document = load_document(name, (SAMPLES / name).read_bytes())
    assert position in [s.position for s in document.sections]


def test_html_inline_markup_does_not_break_sentences_when_parsed() -> None:
    document = load_document("shipping.html", (SAMPLES / "shipping.html").read_bytes())
    assert any("Standard delivery: 3 to 5 business days" in s.text for s in document.sections)
    assert document.title == "Shipping and delivery"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\t \n", "empty"),
        ("tool.exe", b"MZ\x90\x00", "unsupported file type '.exe'"),
        ("program.txt", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "binary"),
        ("broken.pdf", b"%PDF-1.4\n this is not really a pdf", "PDF"),
        ("broken.docx", b"PK\x03\x04 definitely not a zip", ".docx"),
    ],
)
def test_bad_file_gets_specific_reason_when_loaded(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFileError, match=reason):
        load_document(name, data)


def test_zip_bomb_disguised_as_docx_is_refused_when_loaded() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (300 * 1024 * 1024))
    with pytest.raises(UnreadableFileError, match="zip bomb"):
        load_document("invoice.docx", buffer.getvalue())


def test_chinese_text_in_gb18030_is_decoded_when_loaded() -> None:
    document = load_document("faq.txt", "退货政策：三十天内可以退货。".encode("gb18030"))
    assert "三十天" in document.sections[0].text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("<script>alert(1)</script>.md", "script>.md"),
        ("bad\x00name\x07.txt", "badname.txt"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_hostile_file_names_are_made_safe_when_stored(raw: str, expected: str) -> None:
    assert safe_document_name(raw) == expected


def test_chinese_text_is_split_at_chinese_sentence_ends_when_chunked() -> None:
    sentence = "如果收到的商品有破损，请在签收后四十八小时内联系客服。"
    document = load_document("faq.md", ("# 常见问题\n\n" + sentence * 30).encode())
    drafts = chunk_document(document, build_splitter(ChunkingSettings(chunk_size=200, chunk_overlap=0)))
    assert len(drafts) > 1
    for draft in drafts:
        body = draft.text.split("\n", 1)[1]
        assert body.endswith("。"), body[-10:]
        assert len(body) <= 200


def test_xlsx_rows_keep_sheet_and_row_when_loaded(tmp_path) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Prices"
    sheet.append(["product", "price"])
    sheet.append(["Aurora kettle", "79 euros"])
    workbook.save(tmp_path / "prices.xlsx")
    document = load_document("prices.xlsx", (tmp_path / "prices.xlsx").read_bytes())
    assert [(s.position, s.text) for s in document.sections] == [
        ("sheet Prices, row 2", "product: Aurora kettle; price: 79 euros")
    ]


def test_pptx_slides_keep_their_number_when_loaded(tmp_path) -> None:
    from pptx import Presentation

    deck = Presentation()
    for title in ("Welcome", "Descaling takes 20 minutes"):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
    deck.save(tmp_path / "training.pptx")
    document = load_document("training.pptx", (tmp_path / "training.pptx").read_bytes())
    assert document.sections[1].position == "slide 2"
    assert "Descaling takes 20 minutes" in document.sections[1].text


@pytest.mark.parametrize("encoding", ["big5", "gbk"])
def test_chinese_text_in_legacy_encodings_is_not_mojibake(encoding: str) -> None:
    text = "退貨政策：自簽收之日起三十天內，未使用且包裝完好的商品可以申請全額退款。如果收到的商品有破損，請聯繫客服。"
    if encoding == "gbk":
        text = (
            "退货政策：自签收之日起三十天内，未使用且包装完好的商品可以申请全额退款。如果收到的商品有破损，请联系客服。"
        )
    document = load_document("faq.txt", text.encode(encoding))
    assert document.sections[0].text == text


def test_scanned_pdf_without_text_layer_is_refused_when_loaded() -> None:
    with pytest.raises(UnreadableFileError, match="no extractable text"):
        load_document("scanned-returns.pdf", scanned_pdf())


def test_encrypted_pdf_is_refused_when_loaded() -> None:
    with pytest.raises(UnreadableFileError, match="encrypted"):
        load_document("price-list.pdf", encrypted_pdf())


def test_pdf_locked_only_by_an_owner_password_is_read_when_loaded() -> None:
    document = load_document("price-list.pdf", encrypted_pdf(user_password=""))
    assert "Internal price list" in document.sections[0].text


def test_page_count_is_kept_for_pdf_and_slides_when_loaded() -> None:
    assert load_document("manual.pdf", (SAMPLES / "aurora-kettle-manual.pdf").read_bytes()).pages == 2
    assert load_document("faq.md", (SAMPLES / "returns-and-refunds.md").read_bytes()).pages is None
