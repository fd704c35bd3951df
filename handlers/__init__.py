"""Telegram glue: parse an Update, call a service, render, reply."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application

from handlers import (
    admin,
    dashboard,
    edits,
    errors,
    extend,
    membership,
    messages,
    nudge,
    queries,
    reports,
    review,
    start,
    submit,
    throttle,
    unit_report,
    work,
)


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Add every handler in the order it must be tried."""
    # Every update passes its sender's budget first (issue 14): a flood costs no work. Its
    # own group: within one group only the first handler that matches runs.
    app.add_handler(throttle.gate_handler(), group=-2)
    # Edited messages are stopped before anything else can act on them again (group -1 runs
    # first and its ApplicationHandlerStop ends the update there).
    for handler in edits.handlers():
        app.add_handler(handler, group=-1)
    # Membership changes and supergroup moves first: they are not addressed to any feature.
    for handler in membership.handlers():
        app.add_handler(handler)
    # /start comes before everything so that an invite link always works; then /help.
    app.add_handler(start.start_handler())
    app.add_handler(start.help_handler())
    # Commands and buttons, one module per feature; their prefixes never overlap.
    for module in (
        queries,
        submit,
        review,
        extend,
        nudge,
        admin,
        reports,
        dashboard,
        work,
        unit_report,
    ):
        for handler in module.handlers():
            app.add_handler(handler)
    # Plain messages last: an open conversation takes them, else they are questions;
    # a button nobody claims (forged or from an old version) gets one clear line.
    for handler in messages.handlers():
        app.add_handler(handler)
    # The error handler answers the person once and logs the rest.
    app.add_error_handler(errors.on_error)
