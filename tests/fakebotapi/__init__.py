"""A fake Telegram Bot API server for tests; see ``server`` for usage."""

from .htmlcheck import HTMLParseError, ParsedText, parse_html, utf16_len
from .server import (
    ApiError,
    FakeBotAPI,
    FakeChat,
    FakeUser,
    Faults,
    Limits,
    RecordedRequest,
    Violation,
)

__all__ = [
    "ApiError",
    "FakeBotAPI",
    "FakeChat",
    "FakeUser",
    "Faults",
    "HTMLParseError",
    "Limits",
    "ParsedText",
    "RecordedRequest",
    "Violation",
    "parse_html",
    "utf16_len",
]
