"""Read the text files people give duban (plans, configs, rosters) the way editors save them.

Windows Notepad writes UTF-8 with a byte-order mark, and older Chinese Windows tools write
GBK or GB18030. duban reads UTF-8 only (TOML is UTF-8 by definition), so a BOM is read as
nothing and a file in another encoding is named as such, with the way out, in one line.
"""

from __future__ import annotations

import codecs
from pathlib import Path

# Tried in order when a file is not UTF-8: the first that decodes the whole file is named.
# GB18030 is a superset of GBK, so a file GBK decodes is called GBK (what editors call it).
_GUESSES = (("utf-16", "UTF-16"), ("gbk", "GBK"), ("gb18030", "GB18030"), ("big5", "Big5"))


class TextFileError(Exception):
    """A text file that cannot be read as UTF-8; the message is one line naming the file."""

    def __init__(self, path: Path, reason: str, encoding: str | None = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.encoding = encoding


def guess_encoding(data: bytes) -> str | None:
    """Return the name of the first non-UTF-8 encoding that decodes `data`, if any."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    for codec, name in _GUESSES:
        if codec == "utf-16":
            continue  # only with its byte-order mark: any even-length bytes decode as UTF-16
        try:
            data.decode(codec)
        except UnicodeDecodeError:
            continue
        return name
    return None


def decode_text(data: bytes, path: Path) -> str:
    """Decode a file's bytes as UTF-8, a leading byte-order mark read as nothing.

    Raises `TextFileError` naming the encoding the bytes look like (GBK, GB18030, UTF-16,
    Big5) when they are not UTF-8, and telling to save the file as UTF-8.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        guess = guess_encoding(data)
        if guess is not None:
            reason = f"this file looks {guess}-encoded; save it as UTF-8"
        else:
            reason = f"not UTF-8 text (byte {exc.start + 1}); save it as UTF-8"
        raise TextFileError(path, reason, guess) from None


def read_text(path: str | Path) -> str:
    """Read a text file given by a person: UTF-8, with or without a byte-order mark.

    Raises `TextFileError` for a file in another encoding, and `OSError` (as `open` does)
    for a file that is missing or unreadable.
    """
    path = Path(path)
    return decode_text(path.read_bytes(), path)
