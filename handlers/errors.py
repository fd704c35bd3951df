"""The central error handler: one polite line to the person, the details to the log."""

from __future__ import annotations

import logging

from telegram import Update

from bot.i18n import t
from handlers.common import Context, reply, runtime

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    """Log an unexpected error and tell the person something went wrong."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_message is not None:
        try:
            await reply(update, t("error.generic", runtime(context).default_language))
        except Exception:  # the apology itself failing must not loop
            log.warning("could not send the error notice", exc_info=True)
