"""The invitation sheet (XLSX) and printable cards (PDF, one per unit, with its QR code).

The cards are drawn with fpdf2 in the charts' Chinese font (bot/reports/fonts.py); the QR
codes are made by segno (error correction M) and embedded as PNG images.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.i18n import plain
from bot.reports.fonts import cjk_font_path
from bot.services.export import Cell, Sheet, Workbook, xlsx_bytes

CARDS_PER_PAGE = 4  # two columns, two rows on A4 portrait: cut along the lines


@dataclass(frozen=True)
class InviteLine:
    """One row of the sheet: unit, role label, code, link (or the /start line), contact."""

    unit: str
    kind: str
    role: str
    code: str
    link: str
    contact: str = ""
    expires: str = ""


def invite_workbook(title: str, lines: Sequence[InviteLine], lang: str) -> bytes:
    """Return the invitation sheet as XLSX bytes (every text kept a text, never a formula)."""

    def col(name: str) -> str:
        return plain(f"intake.sheet.{name}", lang)

    sheet = Sheet(
        col("title"),
        [col(n) for n in ("unit", "kind", "role", "contact", "code", "link", "expires")],
    )
    for line in lines:
        sheet.rows.append(
            [
                Cell(_safe(line.unit)),
                Cell(_safe(line.kind)),
                Cell(line.role),
                Cell(_safe(line.contact)),
                Cell(line.code),
                Cell(line.link),
                Cell(line.expires),
            ]
        )
    return xlsx_bytes(Workbook(title, [sheet], len(lines)))


def _safe(text: str) -> str:
    """Keep a spreadsheet from running a name as a formula (CSV/XLSX injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def invite_pdf(title: str, lines: Sequence[InviteLine], lang: str) -> bytes:
    """Return printable cards: per unit its name, role, contact, the link or code, a QR code.

    The QR code holds exactly the printed link (or the `/start CODE` line without one).
    """
    import segno
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(False)
    pdf.set_title(title[:200])
    pdf.set_creator("duban")
    pdf.add_font("cjk", fname=str(cjk_font_path()))
    width, height = 210.0, 297.0
    card_w, card_h = width / 2, height / 2
    for i, line in enumerate(lines):
        if i % CARDS_PER_PAGE == 0:
            pdf.add_page()
            pdf.set_draw_color(180, 180, 180)
            pdf.dashed_line(card_w, 0, card_w, height, 2, 2)
            pdf.dashed_line(0, card_h, width, card_h, 2, 2)
        x = (i % 2) * card_w
        y = ((i % CARDS_PER_PAGE) // 2) * card_h
        margin = 10.0
        inner = card_w - 2 * margin
        pdf.set_xy(x + margin, y + margin)
        pdf.set_font("cjk", size=9)
        pdf.set_text_color(90, 90, 90)
        pdf.multi_cell(inner, 4.5, title, align="C")
        pdf.set_xy(x + margin, pdf.get_y() + 2)
        pdf.set_font("cjk", size=16)
        pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(inner, 8, line.unit, align="C")
        pdf.set_font("cjk", size=11)
        who = f"{line.role} · {line.contact}" if line.contact else line.role
        pdf.set_x(x + margin)
        pdf.multi_cell(inner, 6, who, align="C")
        qr = segno.make(line.link, error="m")
        png = io.BytesIO()
        qr.save(png, kind="png", scale=10, border=4)
        png.seek(0)
        side = 60.0
        top = pdf.get_y() + 3
        pdf.image(png, x=x + (card_w - side) / 2, y=top, w=side, h=side)
        pdf.set_xy(x + margin, top + side + 3)
        pdf.set_font("cjk", size=9)
        pdf.multi_cell(inner, 4.5, plain("intake.card.scan", lang), align="C")
        pdf.set_x(x + margin)
        pdf.set_font("cjk", size=8)
        pdf.multi_cell(inner, 4, line.link, align="C")
        if line.expires:
            pdf.set_x(x + margin)
            pdf.multi_cell(
                inner, 4, plain("intake.card.expires", lang, moment=line.expires), align="C"
            )
    return bytes(pdf.output())


def write_invites(path: Path, title: str, lines: Sequence[InviteLine], lang: str) -> None:
    """Write the sheet (.xlsx) or the cards (.pdf), chosen by the file's extension.

    Raises ValueError for another extension.
    """
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        data = invite_workbook(title, lines, lang)
    elif suffix == ".pdf":
        data = invite_pdf(title, lines, lang)
    else:
        raise ValueError(f"{path}: write invitations to an .xlsx or .pdf file")
    path.write_bytes(data)
