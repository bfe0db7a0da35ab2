"""Render one document's rows as a text PDF in the layout ``documents/parsing/pdf_rows.py`` reads.

Each page starts with a title and the header lines (``Property: <code> — <name>``, ``Type:``,
``Document:``, ``Period:``), then a column heading, then one line per line item: the account
code at the left margin, the name, and the amount right-aligned (negatives in parentheses, with
thousands separators). Totals are set in Helvetica-Bold with a rule above them. Long documents
continue on further pages, which repeat the header. Django-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from reportlab.lib.pagesizes import letter
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

PAGE_WIDTH, PAGE_HEIGHT = letter
LEFT = 54.0
NAME_X = 150.0
RIGHT = PAGE_WIDTH - 54.0
LINE_HEIGHT = 15.0
BOTTOM = 60.0
FONT = "Helvetica"
BOLD = "Helvetica-Bold"
SIZE = 10


def format_amount(amount: float) -> str:
    text = f"{abs(amount):,.2f}"
    return f"({text})" if amount < 0 else text


def render_document_pdf(rows: list[dict], target: str | Path | BinaryIO) -> None:
    """Write a PDF of one document: ``rows`` are canonical row dicts of one (property, type, period)."""
    if not rows:
        raise ValueError("a document needs at least one row")
    first = rows[0]
    keys = {(r["property_code"], r["document_type"], r["period"]) for r in rows}
    if len(keys) != 1:
        raise ValueError("rows of more than one document")
    canvas = Canvas(str(target) if isinstance(target, str | Path) else target, pagesize=letter, invariant=1)
    title = first["document_type"].replace("_", " ").title()
    header = [f"Property: {first['property_code']} — {first.get('property_name') or first['property_code']}"]
    if first.get("property_type"):
        header.append(f"Type: {first['property_type']}")
    header += [f"Document: {first['document_type']}", f"Period: {first['period']}"]
    # The name column starts clear of the widest code, so code and name never run together.
    name_x = max(NAME_X, LEFT + max(stringWidth(str(r["account_code"]), BOLD, SIZE) for r in rows) + 18)
    page = 0

    def start_page() -> float:
        nonlocal page
        page += 1
        y = PAGE_HEIGHT - 54
        canvas.setFont(BOLD, 14)
        canvas.drawString(LEFT, y, title)
        y -= 24
        canvas.setFont(FONT, SIZE)
        for line in header:
            canvas.drawString(LEFT, y, line)
            y -= LINE_HEIGHT
        y -= 6
        canvas.setFont("Helvetica-Oblique", 9)
        canvas.drawString(LEFT, y, "Account")
        canvas.drawString(name_x, y, "Description")
        canvas.drawRightString(RIGHT, y, "Amount")
        canvas.line(LEFT, y - 4, RIGHT, y - 4)
        canvas.setFont("Helvetica-Oblique", 8)
        canvas.drawString(LEFT, 30, f"Page {page}")
        return y - LINE_HEIGHT - 2

    y = start_page()
    for row in rows:
        if y < BOTTOM:
            canvas.showPage()
            y = start_page()
        font = BOLD if row.get("is_total") else FONT
        if row.get("is_total"):
            canvas.line(RIGHT - 90, y + LINE_HEIGHT - 4, RIGHT, y + LINE_HEIGHT - 4)
        canvas.setFont(font, SIZE)
        canvas.drawString(LEFT, y, str(row["account_code"]))
        canvas.drawString(name_x, y, str(row["account_name"]))
        canvas.drawRightString(RIGHT, y, format_amount(float(row["amount"])))
        y -= LINE_HEIGHT
    canvas.showPage()
    canvas.save()


def group_documents(rows: Iterable[dict]) -> dict[tuple[str, str, str], list[dict]]:
    documents: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        documents.setdefault((row["property_code"], row["document_type"], row["period"]), []).append(row)
    return documents


def render_sample_pdfs(rows: Iterable[dict], output_dir: str | Path, *, count: int = 5) -> list[Path]:
    """Render ``count`` documents (the last period of the first property, one per document type
    first, then earlier periods) to ``output_dir/<property>_<type>_<period>.pdf``."""
    documents = group_documents(rows)
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    first_property = min(key[0] for key in documents)
    keys = sorted((key for key in documents if key[0] == first_property), key=lambda k: (k[2], k[1]), reverse=True)
    paths = []
    for key in keys[:count]:
        path = folder / f"{key[0]}_{key[1]}_{key[2]}.pdf"
        render_document_pdf(documents[key], path)
        paths.append(path)
    return paths
