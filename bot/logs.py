"""Keep secrets out of logs and error output."""

from __future__ import annotations

import logging
import re

_SECRETS: list[str] = []

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
    """Replace every registered secret, invite code and feed token in a text."""
    for secret in _SECRETS:
        text = text.replace(secret, "[redacted]")
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Codes and feed links are redacted even before a token is registered.
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            if redact(formatted) != formatted:
                record.exc_text = redact(formatted)
                record.exc_info = None
        return True


def protect(secret: str) -> None:
    """Register a secret (the bot token) to be redacted from every log line."""
    if len(secret) >= 4 and secret not in _SECRETS:
        _SECRETS.append(secret)
    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, _RedactFilter) for f in handler.filters):
            handler.addFilter(_RedactFilter())
