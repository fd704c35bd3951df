"""The page templates (jinja2, autoescaped) and the helpers they call: text by key, dates."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import markupsafe
from jinja2 import Environment, PackageLoader, select_autoescape

from bot.i18n import format_date, format_moment, plain, progress_bar, t
from bot.services.notices import title_of


@cache
def environment() -> Environment:
    """Return the template environment (templates ship in dashboard/templates)."""
    env = Environment(
        loader=PackageLoader("dashboard", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["percent"] = percent
    env.globals["progress_bar"] = progress_bar
    env.globals["notice_title"] = title_of
    return env


def percent(done: int, total: int) -> int:
    """Return done/total as a whole percentage (0 when nothing is owed), as /status rounds it."""
    return round(100 * done / total) if total else 0


class Words:
    """Text by catalog key in one language, for templates.

    `_(key)` gives the catalog's Telegram HTML (b, i, code) with every parameter escaped, safe
    in element content; `p(key)` gives plain text, escaped by the template like any value
    (for attributes).
    """

    def __init__(self, lang: str, tz: str) -> None:
        self.lang = lang
        self.tz = tz

    def __call__(self, key: str, **params: Any) -> markupsafe.Markup:
        return markupsafe.Markup(t(key, self.lang, **params))

    def p(self, key: str, **params: Any) -> str:
        """Return a message as plain text."""
        return plain(key, self.lang, **params)

    def moment(self, value: datetime) -> str:
        """Write a moment in the campaign's time zone (`5月10日 18:00（周三）`)."""
        return format_moment(value, self.tz, self.lang)

    def day(self, value: datetime) -> str:
        """Write a moment's local date (`5月10日`)."""
        return format_date(value, self.tz, self.lang)


def render(name: str, **context: Any) -> str:
    """Render one template with its context."""
    return environment().get_template(name).render(**context)
