"""The central error handler: one polite line to the person, the details to the log."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter

from bot.i18n import t
from handlers.common import Context, reply, runtime

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    """Log an unexpected error and tell the person something went wrong."""
    error = context.error
    if isinstance(error, Forbidden | RetryAfter) or (
        isinstance(error, NetworkError) and not isinstance(error, BadRequest)
    ):
        # Telegram could not take the answer (network, flood, blocked). What the person did is
        # already stored; an apology would go the same way, and "something went wrong" would
        # be untrue.
        log.warning("could not answer an update: %s", error)
        return
    log.error("error while handling an update", exc_info=error)
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            await reply(update, t("error.generic", runtime(context).default_language))
        except Exception:  # the apology itself failing must not loop
            log.warning("could not send the error notice", exc_info=True)
