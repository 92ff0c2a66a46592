"""Regenerate the binary samples in knowledge/samples/ (PDF, DOCX): `python -m knowledge.sample_documents`.

The outputs are committed (a few KB each); this script is how they were made and how to change them.
"""

from datetime import UTC, datetime
from pathlib import Path

SAMPLES_DIR = Path(__file__).parent / "samples"

WARRANTY = [
    (
        "Lumora Home limited warranty",
        [
            "Every Lumora Home appliance comes with a 2-year limited warranty from the date of purchase. "
            "The warranty covers defects in materials and workmanship under normal household use.",
            "What is not covered: accidental damage, damage from limescale when the appliance was not "
            "descaled as described in its manual, commercial use, and normal wear of seals and filters.",
            "How to make a warranty claim: contact care@lumora-home.example with your order number, the "
            "serial number printed under the base of the appliance, and a short description or video of "
            "the fault. If the fault is covered, we repair or replace the appliance free of charge, "
            "including shipping. Repairs take about 10 business days.",
            "Registering your appliance in your Lumora account extends the warranty by one extra year "
            "(3 years in total) at no cost.",
        ],
    )
]

KETTLE_MANUAL = [
    (
        "Aurora Smart Kettle - first use",
        [
            "Before the first use, clean the kettle once to remove manufacturing residue.",
            "1. Place the base on a flat, dry surface and plug it in.",
            "2. Fill the kettle with water up to the MAX mark (1.7 litres).",
            "3. Press and hold the power button for 2 seconds until the ring light turns white.",
            "4. Let the water boil, then pour it away. Repeat twice.",
            "5. To pair the kettle with the Lumora app, hold the temperature button for 5 seconds until "
            "the ring light blinks blue, then follow the steps in the app.",
        ],
    ),
    (
        "Aurora Smart Kettle - descaling",
        [
            "Descale the kettle every 4 weeks in hard-water areas, or when the ring light blinks orange.",
            "1. Fill the kettle with 1 litre of water and add one Lumora descaling tablet.",
            "2. Select the descale program: press the temperature button three times.",
            "3. Wait 20 minutes until the ring light turns green.",
            "4. Empty the kettle and rinse it twice with clean water.",
            "Never use vinegar: it damages the seals and is not covered by the warranty.",
        ],
    ),
]

ACCOUNT_HELP = [
    ("Account and password help", 1, []),
    (
        "Resetting a forgotten password",
        2,
        [
            "1. On the sign-in page, select 'Forgot password?'.",
            "2. Enter the email address of your Lumora account.",
            "3. Open the email we send and select the reset link. The link is valid for 30 minutes.",
            "4. Choose a new password of at least 10 characters and sign in.",
            "No email after 10 minutes? Check your spam folder, then contact support.",
        ],
    ),
    (
        "Two-step verification",
        2,
        [
            "Turn on two-step verification under Account > Security. You then confirm each new sign-in "
            "with a 6-digit code from an authenticator app. Keep your 8 backup codes in a safe place: "
            "support cannot bypass two-step verification for you.",
        ],
    ),
    (
        "Changing your email address",
        2,
        ["Go to Account > Profile, enter the new address and confirm it from the email we send to it."],
    ),
    (
        "Closing your account",
        2,
        [
            "You can close your account under Account > Privacy > Close account. Open orders must be "
            "delivered first. Your personal data is deleted within 30 days; invoices are kept for 7 years "
            "as the law requires.",
        ],
    ),
]


def write_pdf(path: Path, title: str, pages: list[tuple[str, list[str]]]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))  # reproducible bytes
    for heading, paragraphs in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2)
    pdf.output(str(path))


def write_docx(path: Path, sections: list[tuple[str, int, list[str]]]) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = sections[0][0]
    for heading, level, paragraphs in sections:
        document.add_heading(heading, level=level)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    document.save(str(path))


def main() -> None:
    write_pdf(SAMPLES_DIR / "warranty.pdf", "Lumora Home limited warranty", WARRANTY)
    write_pdf(SAMPLES_DIR / "aurora-kettle-manual.pdf", "Aurora Smart Kettle manual", KETTLE_MANUAL)
    write_docx(SAMPLES_DIR / "account-and-password.docx", ACCOUNT_HELP)


if __name__ == "__main__":
    main()
