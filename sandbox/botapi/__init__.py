"""duban's local Telegram Bot API server (127.0.0.1): tests and the sandbox; see ``server``."""

from .htmlcheck import HTMLParseError, ParsedText, parse_html, utf16_len
from .server import (
    ApiError,
    FakeChat,
    FakeUser,
    Faults,
    Limits,
    LocalBotAPI,
    RecordedRequest,
    Violation,
)

__all__ = [
    "ApiError",
    "FakeChat",
    "FakeUser",
    "Faults",
    "HTMLParseError",
    "Limits",
    "LocalBotAPI",
    "ParsedText",
    "RecordedRequest",
    "Violation",
    "parse_html",
    "utf16_len",
]
