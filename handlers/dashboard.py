"""/dashboard: a button that opens the dashboard (Mini App in private chats, login in groups)."""

from __future__ import annotations

from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LoginUrl,
    MenuButtonWebApp,
    Update,
    WebAppInfo,
)
from telegram.error import TelegramError
from telegram.ext import Application, BaseHandler

from bot.config import Config
from bot.i18n import plain, t
from dashboard import dashboard_url
from handlers.common import Context, Ctx, Reply, command, is_group

LOGIN_PATH = "auth/widget"


def _https(url: str) -> bool:
    # Telegram opens Mini Apps and login URLs over HTTPS only.
    return url.startswith("https://")


def open_button(public_url: str, lang: str, *, group: bool) -> InlineKeyboardButton:
    """Return the button that opens the dashboard from a chat.

    Private chats get a Mini App button; groups (where Mini App buttons are not allowed) a
    login_url button, which signs the person in like the Login Widget. Without HTTPS (a test
    or a first try on a LAN) it is a plain link to the browser's sign-in.
    """
    url = dashboard_url(public_url)
    label = str(plain("dashboard.open_button", lang))
    if not _https(url):
        return InlineKeyboardButton(label, url=url)
    if group:
        return InlineKeyboardButton(label, login_url=LoginUrl(url + LOGIN_PATH))
    return InlineKeyboardButton(label, web_app=WebAppInfo(url))


async def open_dashboard(ctx: Ctx) -> None:
    """Answer /dashboard with the button that opens it, for a registered person."""
    ctx.need_caller()
    http = ctx.rt.config.http
    if http is None or not http.public_url:
        ctx.say(t("dashboard.not_enabled", ctx.lang))
        return
    group = is_group(ctx.update)
    key = "dashboard.open_group_text" if group else "dashboard.open_text"
    button = open_button(http.public_url, ctx.lang, group=group)
    ctx.replies.append(Reply(t(key, ctx.lang), markup=InlineKeyboardMarkup([[button]])))


async def set_menu_button(app: Application[Any, Any, Any, Any, Any, Any], config: Config) -> None:
    """Make the private chats' menu button open the dashboard (HTTPS public_url only)."""
    http = config.http
    if http is None or not _https(http.public_url):
        return
    label = plain("dashboard.menu_button", config.ui.default_language)
    try:
        await app.bot.set_chat_menu_button(
            menu_button=MenuButtonWebApp(label, WebAppInfo(dashboard_url(http.public_url)))
        )
    except TelegramError as exc:
        # The bot works without it; /dashboard still offers the button.
        app.bot_data.setdefault("warnings", []).append(str(exc))


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the dashboard command."""
    return [command("dashboard", open_dashboard, write=False)]
