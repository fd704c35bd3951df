"""Message catalogs (zh, en) and the one function that renders a key."""

from __future__ import annotations

import html
import string
import tomllib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
_DIR = Path(__file__).parent


class Markup(str):
    """Text that is already safe HTML (rendered by `t`); it is not escaped again."""

    __slots__ = ()


def _flatten(prefix: str, data: dict[str, Any], out: dict[str, str]) -> None:
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(name, value, out)
        else:
            out[name] = str(value)


@cache
def catalog(lang: str) -> dict[str, str]:
    """Return every message of one language, by dotted key.

    Each feature keeps its messages in its own file (`<lang>/<feature>.toml`); a key
    defined twice is a mistake and fails loudly.
    """
    out: dict[str, str] = {}
    for path in sorted((_DIR / lang).glob("*.toml")):
        with path.open("rb") as fh:
            part: dict[str, str] = {}
            _flatten("", tomllib.load(fh), part)
        clash = set(part) & set(out)
        if clash:
            raise ValueError(f"{path.name}: keys defined twice: {', '.join(sorted(clash))}")
        out |= part
    return out


def normalize_language(lang: str | None) -> str:
    """Return a supported language code for a preference such as `zh-hans` or `en-US`."""
    if not lang:
        return DEFAULT_LANGUAGE
    base = lang.lower().split("-")[0].split("_")[0]
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


class _Escaping(string.Formatter):
    def __init__(self, escape: bool) -> None:
        self.escape = escape

    def format_field(self, value: Any, format_spec: str) -> str:
        text: str = super().format_field(value, format_spec)
        if self.escape and not isinstance(value, Markup):
            return html.escape(text, quote=False)
        return text


_HTML = _Escaping(escape=True)
_PLAIN = _Escaping(escape=False)


def t(key: str, lang: str | None = None, /, **params: Any) -> Markup:
    """Render a message as Telegram HTML; every parameter is escaped unless it is Markup."""
    return Markup(_HTML.vformat(_lookup(key, lang), (), params))


def plain(key: str, lang: str | None = None, /, **params: Any) -> str:
    """Render a message as plain text (terminal output)."""
    return _PLAIN.vformat(_lookup(key, lang), (), params)


def _lookup(key: str, lang: str | None) -> str:
    messages = catalog(normalize_language(lang))
    # A key missing in one language falls back to the default, never to the raw key.
    text: str = messages[key] if key in messages else catalog(DEFAULT_LANGUAGE)[key]
    return text


_ZH_WEEKDAYS = "一二三四五六日"


def format_moment(moment: datetime, tz: str, lang: str | None, *, with_year: bool = False) -> str:
    """Write a moment in the campaign's zone the way people read it (`5月10日 18:00（周三）`)."""
    local = moment.astimezone(ZoneInfo(tz))
    if normalize_language(lang) == "zh":
        year = f"{local.year}年" if with_year else ""
        return (
            f"{year}{local.month}月{local.day}日 {local:%H:%M}（周{_ZH_WEEKDAYS[local.weekday()]}）"
        )
    year = f" {local.year}" if with_year else ""
    return f"{local:%a} {local.day} {local:%b}{year} {local:%H:%M}"


def format_date(moment: datetime, tz: str, lang: str | None) -> str:
    """Write the local date of a moment (`5月10日` / `10 May`)."""
    local = moment.astimezone(ZoneInfo(tz))
    if normalize_language(lang) == "zh":
        return f"{local.month}月{local.day}日"
    return f"{local.day} {local:%b}"


def progress_bar(done: int, total: int, width: int = 10) -> str:
    """Draw a text progress bar such as `▓▓▓▓░░░░░░`."""
    if total <= 0:
        return "░" * width
    filled = round(width * done / total)
    return "▓" * filled + "░" * (width - filled)
