"""Text from plans and people, made safe for writers that refuse control characters.

XLSX (openpyxl raises IllegalCharacterError), iCalendar (RFC 5545 TEXT allows no control
characters but tab) and CSV readers choke on characters a plan or a person can bring: Word's
manual line break U+000B, other C0 controls, DEL, and lone UTF-16 surrogates (which cannot be
encoded at all). `printable` replaces them; ordinary text passes through unchanged.
"""

from __future__ import annotations

import re

# Control characters but tab, newline and carriage return; DEL; lone surrogates.
_CONTROL_KEEP_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def printable(text: str, *, multiline: bool = True) -> str:
    """Return `text` with every control character replaced by a space.

    Input: any string. Output: the same string where U+0000-U+001F and U+007F (keeping tab,
    newline and carriage return when `multiline`) and lone surrogates are spaces. Word's
    manual line break (U+000B) becomes a newline when `multiline`, since it means one.
    """
    if multiline:
        text = text.replace("\x0b", "\n")
        return _CONTROL_KEEP_LINES.sub(" ", text)
    return _CONTROL.sub(" ", text)
