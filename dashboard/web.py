"""The dashboard's routes on duban's own web server: sign-in, pages, office actions, files.

Web glue only, like handlers/ for the chat: a request is checked at the edge (session cookie,
CSRF token, Origin), the person's roles are loaded exactly as the chat loads them
(`load_caller`), the page asks bot.services through dashboard.pages, and a template renders
the answer. Every refusal is the chat's own typed error, answered with a 403 page and audited.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import httpx
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot
from telegram.error import TelegramError

from bot.db import models as m
from bot.db.engine import Database
from bot.errors import DubanError
from bot.i18n import normalize_language, plain
from bot.reports.fonts import cjk_font_path
from bot.runtime import Clock
from bot.services.access import NotAllowed, NotRegistered, OtherUnit, load_caller
from bot.services.audit import record
from bot.services.notices import AllReceived, RemindTooSoon, remind_again
from bot.services.review import accept, return_submission
from bot.services.versions import VersionFile, version_file
from dashboard import PREFIX, pages
from dashboard.auth import BadLogin, Session, Sessions, check_init_data, check_login_widget
from dashboard.charts import Span, timeline_key, timeline_svg
from dashboard.pages import MAX_FILE, Visitor
from dashboard.render import Words, render

log = logging.getLogger(__name__)

COOKIE = "duban_session"
FLASH = "duban_flash"
FRAGMENT_HEADER = "X-Duban-Fragment"
REFRESH_SECONDS = 30
STATIC = files("dashboard") / "static"
STATIC_NAMES = re.compile(r"[a-z0-9_-]{1,40}\.(css|js|svg)")
BACK = re.compile(r"/dash/[A-Za-z0-9/_?=&.%-]{0,200}")
SETTING_USERNAME = "bot_username"
COMPRESSED = frozenset({"text/html", "text/css", "text/javascript", "image/svg+xml"})
# Pages are personal and change: never cached; assets are versioned by the package.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "script-src 'self' https://telegram.org; frame-src https://oauth.telegram.org; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'self' https://web.telegram.org"
    ),
}


@dataclass
class Dashboard:
    """What the dashboard needs from the running bot.

    `bot` fetches files (getFile); `poke` wakes the outbox sender after an action wrote
    messages for other people (the chat's handlers do the same after their commit).
    """

    db: Database
    token: str
    public_url: str
    clock: Clock
    default_language: str = "zh"
    bot: Bot | None = None
    poke: Callable[[], None] = lambda: None
    # How often pages fetch their figures again (SPEC §8: every 30 s).
    refresh_seconds: int = REFRESH_SECONDS
    sessions: Sessions = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.token)

    @property
    def secure(self) -> bool:
        """Return whether cookies must only travel over HTTPS (the public URL is https)."""
        return self.public_url.startswith("https://")


DASHBOARD = web.AppKey("dashboard", Dashboard)
Builder = Callable[[AsyncSession, Visitor, datetime], Awaitable[dict[str, Any]]]


def mount(dashboard: Dashboard) -> Callable[[web.Application], None]:
    """Return the function that adds the dashboard's routes to duban's web application."""

    def setup(app: web.Application) -> None:
        app[DASHBOARD] = dashboard
        app.middlewares.append(_headers)
        app.add_routes(
            [
                web.get(PREFIX, _to_root),
                web.get(f"{PREFIX}/", overview),
                web.get(f"{PREFIX}/task/{{id:[0-9]{{1,9}}}}", task),
                web.get(f"{PREFIX}/unit/{{id:[0-9]{{1,9}}}}", unit),
                web.get(f"{PREFIX}/units", find_unit),
                web.get(f"{PREFIX}/overdue", overdue),
                web.get(f"{PREFIX}/ranking", ranking),
                web.get(f"{PREFIX}/review", review),
                web.get(f"{PREFIX}/notices", notices),
                web.get(f"{PREFIX}/notice/{{id:[0-9]{{1,9}}}}", notice),
                web.post(f"{PREFIX}/notice/{{id:[0-9]{{1,9}}}}/remind", do_remind),
                web.post(f"{PREFIX}/review/{{id:[0-9]{{1,9}}}}/accept", do_accept),
                web.post(f"{PREFIX}/review/{{id:[0-9]{{1,9}}}}/return", do_return),
                web.get(f"{PREFIX}/file/{{id:[0-9]{{1,9}}}}/{{position:[0-9]{{1,3}}}}", file),
                web.get(f"{PREFIX}/timeline.svg", timeline),
                web.post(f"{PREFIX}/auth/webapp", login_webapp),
                web.get(f"{PREFIX}/auth/widget", login_widget),
                web.post(f"{PREFIX}/logout", logout),
                web.get(f"{PREFIX}/static/font.otf", font),
                web.get(f"{PREFIX}/static/{{name}}", static),
            ]
        )

    return setup


@web.middleware
async def _headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.path.startswith(PREFIX):
        return await handler(request)
    started = time.perf_counter()
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.Response) and not response.prepared:
        # The server's own time, for the browser's developer tools and the bench.
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
        body = response.body
        if response.content_type in COMPRESSED and isinstance(body, bytes) and len(body) > 1024:
            response.enable_compression()
    return response


# -- sign-in -------------------------------------------------------------------------------


def _set_session(dash: Dashboard, response: web.StreamResponse, telegram_id: int) -> None:
    now = dash.clock()
    value, session = dash.sessions.issue(telegram_id, now)
    response.set_cookie(
        COOKIE,
        value,
        max_age=int((session.expires - now).total_seconds()),
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=dash.secure,
    )


async def login_webapp(request: web.Request) -> web.Response:
    """Check a Mini App's initData; on success set the session cookie."""
    dash = request.app[DASHBOARD]
    form = await request.post()
    try:
        who = check_init_data(str(form.get("init_data", "")), dash.token, dash.clock())
    except BadLogin as exc:
        log.warning("dashboard: Mini App login refused (%s) from %s", exc.reason, request.remote)
        lang = dash.default_language
        return web.json_response(
            {"ok": False, "message": plain("dashboard.login_failed", lang)}, status=401
        )
    response = web.json_response({"ok": True})
    _set_session(dash, response, who.telegram_id)
    return response


async def login_widget(request: web.Request) -> web.Response:
    """Check the Login Widget's redirect (or a login_url button's); set the session cookie."""
    dash = request.app[DASHBOARD]
    try:
        who = check_login_widget(dict(request.query), dash.token, dash.clock())
    except BadLogin as exc:
        log.warning("dashboard: widget login refused (%s) from %s", exc.reason, request.remote)
        return _message(dash.default_language, "dashboard.login_failed", status=401)
    # A redirect chain that began on Telegram's site would not carry a SameSite=Strict
    # cookie; a page of our own that moves on does.
    response = web.Response(
        text=render("continue.html", target=f"{PREFIX}/"), content_type="text/html"
    )
    _set_session(dash, response, who.telegram_id)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (CSRF-checked like every action)."""
    dash = request.app[DASHBOARD]
    session = dash.sessions.check(request.cookies.get(COOKIE), dash.clock())
    form = await request.post()
    if session is None or not _csrf_ok(request, session, str(form.get("csrf", ""))):
        return _message(dash.default_language, "dashboard.csrf_failed", status=403)
    response = web.Response(status=303, headers={"Location": f"{PREFIX}/"})
    response.del_cookie(COOKIE, path=PREFIX)
    return response


def _csrf_ok(request: web.Request, session: Session, given: str) -> bool:
    """Return whether an action carries the session's CSRF token and comes from our origin."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        return False
    return bool(given) and hmac.compare_digest(given.encode(), session.csrf.encode())


async def _login_page(request: web.Request, dash: Dashboard) -> web.Response:
    async with dash.db.read() as session:
        username = await session.scalar(
            select(m.Setting.value).where(m.Setting.key == SETTING_USERNAME)
        )
    lang = dash.default_language
    html = render(
        "login.html",
        _=Words(lang, "Asia/Shanghai"),
        lang=lang,
        bot=username,
        auth_url=f"{dash.public_url.rstrip('/')}{PREFIX}/auth/widget",
    )
    return web.Response(text=html, content_type="text/html", status=401)


# -- pages ---------------------------------------------------------------------------------


def _message(lang: str, key: str, *, status: int, **params: Any) -> web.Response:
    html = render("message.html", _=Words(lang, "Asia/Shanghai"), lang=lang, key=key, params=params)
    return web.Response(text=html, content_type="text/html", status=status)


def _status_of(exc: DubanError) -> int:
    return 403 if isinstance(exc, NotAllowed | OtherUnit | NotRegistered) else 404


async def _refused(dash: Dashboard, person_id: int | None, request: web.Request, key: str) -> None:
    """Record a refused page or action in the audit log, as the chat records refused buttons."""
    try:
        async with dash.db.write() as session:
            record(
                session,
                at=dash.clock(),
                actor=f"person:{person_id}" if person_id else "dashboard",
                action="access.refused",
                details={"attempt": f"{request.method} {request.path}"[:100], "reason": key},
            )
    except Exception:
        log.warning("could not audit a refused dashboard request", exc_info=True)


def _take_flash(request: web.Request) -> str | None:
    raw = request.cookies.get(FLASH)
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw.encode()).decode()[:500]
    except ValueError:
        return None


async def _page(request: web.Request, template: str, build: Builder) -> web.Response:
    dash = request.app[DASHBOARD]
    now = dash.clock()
    session = dash.sessions.check(request.cookies.get(COOKIE), now)
    if session is None:
        return await _login_page(request, dash)
    async with dash.db.read() as db_session:
        caller = await load_caller(db_session, session.telegram_id)
        if caller is None:
            return _message(dash.default_language, "dashboard.not_registered", status=403)
        lang = normalize_language(caller.person.language or dash.default_language)
        visitor = Visitor(caller, lang, session.csrf)
        words = Words(lang, caller.campaign.timezone)
        try:
            context = await build(db_session, visitor, now)
        except DubanError as exc:
            refusal: DubanError | None = exc
        else:
            refusal = None
    if refusal is not None:
        status = _status_of(refusal)
        if status == 403:
            await _refused(dash, caller.person.id, request, refusal.key)
        return _message(lang, refusal.key, status=status, **refusal.params)
    # "1": the page's main part (the refresh); "part": a section loaded into another page.
    fragment = request.headers.get(FRAGMENT_HEADER, "")
    if fragment not in ("", "1", "part"):
        fragment = "1"
    html = render(
        template,
        _=words,
        lang=lang,
        visitor=visitor,
        campaign=caller.campaign,
        now=now,
        fragment=fragment,
        flash=None if fragment else _take_flash(request),
        refresh=dash.refresh_seconds,
        when=pages.when,
        path=request.path_qs,
        **context,
    )
    response = web.Response(text=html, content_type="text/html")
    if not fragment and FLASH in request.cookies:
        response.del_cookie(FLASH, path=PREFIX)
    return response


async def _to_root(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{PREFIX}/")


async def overview(request: web.Request) -> web.Response:
    """The campaign at a glance (overseers) or the own units (contacts and heads)."""
    return await _page(request, "overview.html", pages.overview)


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])


async def task(request: web.Request) -> web.Response:
    """Who submitted one task and who not; filter by `show`."""
    show = request.query.get("show", "all")
    task_id = _id(request)

    async def build(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
        return await pages.task_page(session, visitor, now, task_id, show)

    return await _page(request, "task.html", build)


async def unit(request: web.Request) -> web.Response:
    """One unit: its tasks and versions."""
    unit_id = _id(request)

    async def build(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
        return await pages.unit_page(session, visitor, now, unit_id)

    return await _page(request, "unit.html", build)


async def find_unit(request: web.Request) -> web.Response:
    """Find a unit by name, alias or a close match, as /unit does."""
    text = request.query.get("q", "").strip()
    found: list[int] = []

    async def build(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
        unit_found, context = await pages.find_unit_page(session, visitor, now, text)
        if unit_found is not None:
            found.append(unit_found.id)
        return context

    if not text:
        raise web.HTTPSeeOther(f"{PREFIX}/")
    response = await _page(request, "find.html", build)
    if found:
        raise web.HTTPSeeOther(f"{PREFIX}/unit/{found[0]}")
    return response


async def overdue(request: web.Request) -> web.Response:
    """Every overdue assignment, grouped by unit."""
    return await _page(request, "overdue.html", pages.overdue_page)


async def ranking(request: web.Request) -> web.Response:
    """The units ranked by the share handed in (overseers)."""
    return await _page(request, "ranking.html", pages.ranking_page)


async def review(request: web.Request) -> web.Response:
    """The office's review queue."""
    return await _page(request, "review.html", pages.review_page)


async def notices(request: web.Request) -> web.Response:
    """The campaign's notices with their receipts counted (office and leaders, as /notice)."""
    show = request.query.get("show", "all")

    async def build(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
        return await pages.notices_page(session, visitor, now, show)

    return await _page(request, "notices.html", build)


async def notice(request: web.Request) -> web.Response:
    """One notice: which units received it (who, when) and which not; filter by `show`."""
    show = request.query.get("show", "all")
    notice_id = _id(request)

    async def build(session: AsyncSession, visitor: Visitor, now: datetime) -> dict[str, Any]:
        return await pages.notice_page(session, visitor, now, notice_id, show)

    return await _page(request, "notice.html", build)


# -- actions -------------------------------------------------------------------------------

# Refusals that are news, not errors: the page comes back with the message as its flash.
SOFT = (RemindTooSoon, AllReceived)


async def _action(
    request: web.Request,
    act: Callable[[AsyncSession, Visitor, datetime, dict[str, str]], Awaitable[str]],
    *,
    default_back: str = f"{PREFIX}/review",
) -> web.StreamResponse:
    """Run one office action: session, CSRF, the caller, the use case in one transaction."""
    dash = request.app[DASHBOARD]
    now = dash.clock()
    session = dash.sessions.check(request.cookies.get(COOKIE), now)
    form = {k: str(v) for k, v in (await request.post()).items()}
    if session is None:
        return _message(dash.default_language, "dashboard.session_expired", status=401)
    if not _csrf_ok(request, session, form.get("csrf", "")):
        await _refused(dash, None, request, "dashboard.csrf_failed")
        return _message(dash.default_language, "dashboard.csrf_failed", status=403)
    back = form.get("back", "")
    if not BACK.fullmatch(back):
        back = default_back
    lang = dash.default_language
    person_id: int | None = None
    try:
        async with dash.db.write() as db_session:
            caller = await load_caller(db_session, session.telegram_id)
            if caller is None:
                raise NotRegistered()
            person_id = caller.person.id
            lang = normalize_language(caller.person.language or dash.default_language)
            text = await act(db_session, Visitor(caller, lang, session.csrf), now, form)
    except SOFT as exc:
        # Nothing was written (the transaction rolled back); say why on the page itself.
        text = plain(exc.key, lang, **exc.params)
    except DubanError as exc:
        status = _status_of(exc)
        if status == 403:
            await _refused(dash, person_id, request, exc.key)
        return _message(lang, exc.key, status=status, **exc.params)
    else:
        dash.poke()
    response = web.Response(status=303, headers={"Location": back})
    response.set_cookie(
        FLASH,
        base64.urlsafe_b64encode(text.encode()).decode(),
        max_age=60,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        secure=dash.secure,
    )
    return response


class ReasonNeeded(DubanError):
    """A return without a reason."""

    key = "dashboard.reason_needed"


async def do_accept(request: web.Request) -> web.StreamResponse:
    """Accept a submission, through the same use case as the chat's accept button."""
    dash = request.app[DASHBOARD]
    submission_id = _id(request)

    async def act(
        session: AsyncSession, visitor: Visitor, now: datetime, form: dict[str, str]
    ) -> str:
        item = await accept(
            session,
            visitor.caller,
            submission_id,
            now=now,
            default_language=dash.default_language,
        )
        return plain(
            "dashboard.accepted_done", visitor.lang, unit=item.unit.name, task=item.task.title
        )

    return await _action(request, act)


async def do_return(request: web.Request) -> web.StreamResponse:
    """Return a submission with a reason, through the chat's use case."""
    dash = request.app[DASHBOARD]
    submission_id = _id(request)

    async def act(
        session: AsyncSession, visitor: Visitor, now: datetime, form: dict[str, str]
    ) -> str:
        reason = form.get("reason", "").replace("\x00", "").strip()[:1000]
        visitor.caller.require_office()
        if not reason:
            raise ReasonNeeded()
        item = await return_submission(
            session,
            visitor.caller,
            submission_id,
            reason,
            now=now,
            default_language=dash.default_language,
        )
        return plain(
            "dashboard.returned_done", visitor.lang, unit=item.unit.name, task=item.task.title
        )

    return await _action(request, act)


async def do_remind(request: web.Request) -> web.StreamResponse:
    """Remind the units that have not received a notice, through the chat's use case (the
    office only; at most once every 5 minutes per notice; audited as `notice.remind`).
    """
    dash = request.app[DASHBOARD]
    notice_id = _id(request)

    async def act(
        session: AsyncSession, visitor: Visitor, now: datetime, form: dict[str, str]
    ) -> str:
        units, messages = await remind_again(
            session,
            visitor.caller,
            notice_id,
            now=now,
            default_language=dash.default_language,
        )
        return plain("work.notice_reminded", visitor.lang, units=units, messages=messages)

    return await _action(request, act, default_back=f"{PREFIX}/notice/{notice_id}")


# -- files and pictures --------------------------------------------------------------------


async def file(request: web.Request) -> web.StreamResponse:
    """Stream one file of a version from Telegram (getFile, ≤ 20 MB) to a person allowed to see
    it. Nothing is stored: the bytes pass through as they arrive.
    """
    dash = request.app[DASHBOARD]
    now = dash.clock()
    session = dash.sessions.check(request.cookies.get(COOKIE), now)
    if session is None:
        return _message(dash.default_language, "dashboard.session_expired", status=401)
    submission_id, position = _id(request), int(request.match_info["position"])
    async with dash.db.read() as db_session:
        caller = await load_caller(db_session, session.telegram_id)
        if caller is None:
            return _message(dash.default_language, "dashboard.not_registered", status=403)
        lang = normalize_language(caller.person.language or dash.default_language)
        try:
            _, info, file_id = await version_file(db_session, caller, submission_id, position)
        except DubanError as exc:
            refusal: DubanError | None = exc
        else:
            refusal = None
    if refusal is not None:
        status = _status_of(refusal)
        if status == 403:
            await _refused(dash, caller.person.id, request, refusal.key)
        return _message(lang, refusal.key, status=status)
    if (info.file_size or 0) > MAX_FILE:
        return _message(lang, "dashboard.file_in_chat", status=200)
    if dash.bot is None:
        return _message(lang, "dashboard.file_unavailable", status=503)
    try:
        found = await dash.bot.get_file(file_id)
    except TelegramError as exc:
        too_big = "too big" in str(exc).lower()
        if not too_big:
            log.warning("dashboard: getFile failed for version %s", submission_id)
        key = "dashboard.file_in_chat" if too_big else "dashboard.file_unavailable"
        return _message(lang, key, status=200 if too_big else 502)
    if not found.file_path:
        return _message(lang, "dashboard.file_unavailable", status=502)
    return await _stream(request, found.file_path, info, submission_id, lang)


# Shown in the page (a photo); every other kind is downloaded, never run in our origin.
INLINE = {"photo": "image/jpeg"}


def _disposition(info: VersionFile) -> str:
    default = f"{info.position}.jpg" if info.kind == "photo" else f"{info.position}"
    name = info.file_name or default
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "file"
    kind = "inline" if info.kind in INLINE else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


async def _stream(
    request: web.Request, url: str, info: VersionFile, submission_id: int, lang: str
) -> web.StreamResponse:
    # The URL holds the bot's token: it is never logged, nor any error that quotes it.
    timeout = httpx.Timeout(30.0, connect=10.0)
    async with httpx.AsyncClient(timeout=timeout) as client:
        try:
            async with client.stream("GET", url) as upstream:
                if upstream.status_code != 200:
                    log.warning("dashboard: file download answered %s", upstream.status_code)
                    return _message(lang, "dashboard.file_unavailable", status=502)
                response = web.StreamResponse(
                    headers={
                        "Content-Type": INLINE.get(info.kind)
                        or info.mime_type
                        or "application/octet-stream",
                        "Content-Disposition": _disposition(info),
                        "Cache-Control": "private, no-store",
                    }
                )
                length = upstream.headers.get("Content-Length")
                if length and length.isdigit():
                    response.content_length = int(length)
                await response.prepare(request)
                async for chunk in upstream.aiter_bytes(64 * 1024):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except httpx.HTTPError:
            log.warning("dashboard: file download failed for version %s", submission_id)
            return _message(lang, "dashboard.file_unavailable", status=502)


async def timeline(request: web.Request) -> web.Response:
    """The campaign's phases as an SVG timeline with today marked (any registered person)."""
    dash = request.app[DASHBOARD]
    now = dash.clock()
    session = dash.sessions.check(request.cookies.get(COOKIE), now)
    if session is None:
        return _message(dash.default_language, "dashboard.session_expired", status=401)
    async with dash.db.read() as db_session:
        caller = await load_caller(db_session, session.telegram_id)
        if caller is None:
            return _message(dash.default_language, "dashboard.not_registered", status=403)
        phases = list(
            await db_session.scalars(
                select(m.Phase)
                .where(m.Phase.campaign_id == caller.campaign.id, m.Phase.archived_at.is_(None))
                .order_by(m.Phase.position)
            )
        )
        lang = normalize_language(caller.person.language or dash.default_language)
        today = now.astimezone(ZoneInfo(caller.campaign.timezone)).date()
    spans = [Span(p.name, p.start_date, p.end_date) for p in phases]
    label = plain("dashboard.today", lang)
    key = timeline_key(spans, today, label)
    if request.headers.get("If-None-Match") == f'"{key}"':
        return web.Response(status=304)
    data = await asyncio.to_thread(timeline_svg, spans, today, label)
    return web.Response(
        body=data,
        content_type="image/svg+xml",
        headers={"ETag": f'"{key}"', "Cache-Control": "private, max-age=300"},
    )


async def static(request: web.Request) -> web.Response:
    """Serve a file shipped in dashboard/static (no CDN)."""
    name = request.match_info["name"]
    if not STATIC_NAMES.fullmatch(name):
        raise web.HTTPNotFound()
    resource = STATIC / name
    if not resource.is_file():
        raise web.HTTPNotFound()
    types = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml"}
    return web.Response(
        body=resource.read_bytes(),
        content_type=types[name.rsplit(".", 1)[1]],
        headers={"Cache-Control": "public, max-age=3600"},
    )


async def font(request: web.Request) -> web.FileResponse:
    """Serve the packaged Chinese font, for browsers that have none of their own."""
    path: Path = cjk_font_path()
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=604800"})
