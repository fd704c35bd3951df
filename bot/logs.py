"""Keep secrets out of logs and error output.

Two nets, so that no path is forgotten: a logging filter on the root handlers, and (for the
`duban` command) stdout and stderr wrapped so that whatever is written to them — a library's
error message, a traceback, a warning, a URL — has every registered secret replaced.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO
from urllib.parse import quote

_SECRETS: list[str] = []
REDACTED = "[redacted]"

# Secrets that are not registered but recognised by their shape: invite codes after /start,
# in a deep link or shown in <code>, and calendar feed tokens in their links. `--debug` logs
# every update and request (issue 14: it logged full codes and links).
_SHAPES = (
    (re.compile(r"(/start(?:@\w+)?\s+)[\w-]{4,}"), r"\1[code]"),
    (re.compile(r"([?&]start=)[\w-]{4,}"), r"\1[code]"),
    (re.compile(r"(<code>)[\w-]{16,}(</code>)"), r"\1[code]\2"),
    (re.compile(r"(/calendar/)[\w-]{8,}(\.ics)"), r"\1[token]\2"),
)


def redact(text: str) -> str:
    """Replace every registered secret in a text."""
    for secret in _SECRETS:
        text = text.replace(secret, REDACTED)
    return text


def redact_log(text: str) -> str:
    """Replace every registered secret, and every invite code and feed token, in a log line.

    Only for logs: the CLI prints the codes it makes on purpose.
    """
    text = redact(text)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Codes and feed links are redacted even before a token is registered.
        message = record.getMessage()
        cleaned = redact_log(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            if redact_log(formatted) != formatted:
                record.exc_text = redact_log(formatted)
                record.exc_info = None
        return True


class RedactingStream:
    """A text stream that writes through to another with every secret replaced."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write `text` with its secrets replaced; return the length of `text`."""
        self._stream.write(redact(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        """Write each line as `write` does."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install_redaction() -> None:
    """Wrap sys.stdout and sys.stderr so that no registered secret is ever written to them."""
    if not isinstance(sys.stdout, RedactingStream):
        sys.stdout = RedactingStream(sys.stdout)
    if not isinstance(sys.stderr, RedactingStream):
        sys.stderr = RedactingStream(sys.stderr)


def protect(secret: str) -> None:
    """Register a secret (the bot token) to be redacted from every log line and output.

    Its URL-encoded form is registered too: a token in a request URL is written that way.
    """
    if len(secret) >= 4:
        for form in (secret, quote(secret, safe=""), quote(secret)):
            if form not in _SECRETS:
                _SECRETS.append(form)
        # Longest first, so that a form containing another is replaced whole.
        _SECRETS.sort(key=len, reverse=True)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, _RedactFilter) for f in handler.filters):
            handler.addFilter(_RedactFilter())
