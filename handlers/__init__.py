"""Telegram glue: parse an Update, call a service, render, reply."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from handlers import errors, start


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Add every handler in the order it must be tried."""
    # Group 0: commands. /start comes first so that an invite link always works.
    app.add_handler(start.start_handler())
    app.add_handler(start.help_handler())
    # The error handler answers the person once and logs the rest.
    app.add_error_handler(errors.on_error)
