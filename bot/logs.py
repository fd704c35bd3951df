"""Keep secrets out of logs and error output."""

from __future__ import annotations

import logging

_SECRETS: list[str] = []


def redact(text: str) -> str:
    """Replace every registered secret in a text."""
    for secret in _SECRETS:
        text = text.replace(secret, "[redacted]")
    return text


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = record.getMessage()
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
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
