"""Read a notice (工作方案, 实施方案, 通知) into lines of text, tables as `| a | b |` rows.

`.txt` (UTF-8, else GB18030), `.docx` (python-docx: paragraphs and tables in document order),
`.pdf` (pypdf: the text layer; lines a page broke are joined again).
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.errors import DubanError


class NoticeError(DubanError):
    """A notice that cannot be read: the message names the file and why."""

    key = "roster.error"


_HEADING_START = re.compile(
    r"^\s*(?:[（(][一二三四五六七八九十\d]+[)）]|[一二三四五六七八九十]+[、．.]|\d+[、．.)]|"
    r"第[一二三四五六七八九十\d]+[阶部步]|\|)"
)
_SENTENCE_END = re.compile(r"[。：:；;！!？?）)」”\"]\s*$")


def read_notice(path: Path) -> list[str]:
    """Return the notice's lines (stripped, empty ones dropped).

    Raises NoticeError for an unknown extension, an unreadable file, or a PDF with no text
    layer (a scan).
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".txt", ".md", ".text"):
            lines = _text_lines(path.read_bytes())
        elif suffix == ".docx":
            lines = _docx_lines(path)
        elif suffix == ".pdf":
            lines = _pdf_lines(path)
        else:
            raise NoticeError(f"{path}: a notice is a .txt, .docx or .pdf file")
    except OSError as exc:
        raise NoticeError(f"{path}: {exc.strerror or exc}") from None
    lines = [line.strip() for line in lines if line.strip()]
    if not lines:
        raise NoticeError(f"{path}: no text found (a scanned PDF has no text layer)")
    return lines


def _text_lines(raw: bytes) -> list[str]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding).splitlines()
        except UnicodeDecodeError:
            continue
    raise NoticeError("neither UTF-8 nor GBK text")


def _docx_lines(path: Path) -> list[str]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several kinds for a broken file
        raise NoticeError(f"{path}: not a readable .docx file ({type(exc).__name__})") from None
    lines: list[str] = []
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.extend(Paragraph(child, document).text.splitlines())
        elif tag == "tbl":
            for row in Table(child, document).rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    cells.append(text)
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def _pdf_lines(path: Path) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        raw = [line for page in reader.pages for line in page.extract_text().splitlines()]
    except (PdfReadError, ValueError, KeyError) as exc:
        raise NoticeError(f"{path}: not a readable .pdf file ({type(exc).__name__})") from None
    # Some writers' CID fonts read back with a NUL before each character.
    raw = [line.replace("\x00", "").strip() for line in raw]
    return join_wrapped([line for line in raw if line])


def join_wrapped(lines: list[str]) -> list[str]:
    """Join lines that a page width broke: a line without closing punctuation continues
    on the next one, unless the next one starts a heading."""
    out: list[str] = []
    for line in lines:
        if (
            out
            and not _SENTENCE_END.search(out[-1])
            and not _HEADING_START.match(line)
            and len(out[-1]) >= 15
        ):
            out[-1] += line
        else:
            out.append(line)
    return out
