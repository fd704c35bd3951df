"""The sandbox page's routes on duban's web server (`/sandbox/...`).

The page (static files shipped in `sandbox/static/`, no CDN) polls `/sandbox/api/state`
for the clock and every persona's chat, and acts through the local Bot API server as the
personas' Telegram clients would: a message, a file, a button press.

Every POST needs the header ``X-Sandbox: 1``: a page on another site cannot send a custom
header to 127.0.0.1 without a CORS preflight, which is never granted.
"""

from __future__ import annotations

import html
import json
import mimetypes
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot.i18n import catalog, format_moment, plain
from bot.messages.limits import utf16_len
from sandbox.moves import MOVES, next_deadline_titles
from sandbox.runner import Persona, Sandbox

JSON = dict[str, Any]
STATIC = resources.files("sandbox") / "static"
STATIC_FILES = {
    "app.js": "text/javascript",
    "style.css": "text/css",
}
MAX_UPLOAD = 20 * 1024 * 1024  # what a Bot API bot may download (getFile)
MAX_TEXT = 4096
# Entity type -> (opening tag, closing tag); links and pre are built with their attributes.
_TAGS = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "code": ("<code>", "</code>"),
    "spoiler": ('<span class="spoiler">', "</span>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote>", "</blockquote>"),
    "bot_command": ('<a class="cmd" href="#">', "</a>"),
    "text_mention": ("<b>", "</b>"),
}
_SAFE_SCHEMES = ("http://", "https://", "tg://", "mailto:")


def entities_html(text: str, entities: list[JSON] | None) -> str:
    """Return Telegram text with its entities (UTF-16 offsets) as escaped HTML for the page."""
    units = text.encode("utf-16-le")
    length = utf16_len(text)
    opens: dict[int, list[str]] = {}
    closes: dict[int, list[str]] = {}
    # Outer entities first; the last opened closes first, so nesting is kept.
    for entity in sorted(entities or [], key=lambda e: (int(e["offset"]), -int(e["length"]))):
        start, end = int(entity["offset"]), int(entity["offset"]) + int(entity["length"])
        if not 0 <= start < end <= length:
            continue
        tags = _tags(entity, _slice(units, start, end))
        if tags is None:
            continue
        opens.setdefault(start, []).append(tags[0])
        closes.setdefault(end, []).insert(0, tags[1])
    out: list[str] = []
    bounds = sorted({0, length, *opens, *closes})
    for i, at in enumerate(bounds):
        out.extend(closes.get(at, []))
        out.extend(opens.get(at, []))
        if i + 1 < len(bounds):
            out.append(html.escape(_slice(units, at, bounds[i + 1]), quote=False))
    return "".join(out).replace("\n", "<br>")


def _slice(units: bytes, start: int, end: int) -> str:
    return units[2 * start : 2 * end].decode("utf-16-le", errors="replace")


def _tags(entity: JSON, content: str) -> tuple[str, str] | None:
    kind = entity.get("type")
    if kind in _TAGS:
        return _TAGS[kind]
    if kind == "pre":
        return "<pre>", "</pre>"
    if kind in ("text_link", "url"):
        href = str(entity.get("url") or content)
        if kind == "url" and "://" not in href:
            href = "http://" + href
        if not href.lower().startswith(_SAFE_SCHEMES):
            return None
        attr = html.escape(href, quote=True)
        return f'<a href="{attr}" target="_blank" rel="noopener noreferrer">', "</a>"
    return None


def _buttons(message: JSON) -> list[list[JSON]]:
    markup = message.get("reply_markup") or {}
    rows = []
    for row in markup.get("inline_keyboard", []):
        buttons = []
        for button in row:
            item: JSON = {"text": str(button.get("text", ""))}
            if "callback_data" in button:
                item["data"] = button["callback_data"]
            elif "url" in button:
                url = str(button["url"])
                item["url"] = url if url.lower().startswith(_SAFE_SCHEMES) else ""
            elif "login_url" in button:
                item["url"] = str(button["login_url"].get("url", ""))
            elif "web_app" in button:
                item["url"] = str(button["web_app"].get("url", ""))
            buttons.append(item)
        rows.append(buttons)
    return rows


def message_view(sandbox: Sandbox, persona: Persona, message: JSON) -> JSON:
    """Return one chat message as the page draws it."""
    moment = datetime.fromtimestamp(int(message.get("date", 0)), UTC)
    view: JSON = {
        "id": message["message_id"],
        "mine": message.get("from", {}).get("id") == persona.user.id,
        "time": format_moment(moment, sandbox.timezone, sandbox.language),
        "html": "",
        "buttons": _buttons(message),
    }
    if "text" in message:
        view["html"] = entities_html(message["text"], message.get("entities"))
    elif "caption" in message:
        view["html"] = entities_html(message["caption"], message.get("caption_entities"))
    if message.get("photo"):
        view["photo"] = _file_url(message["photo"][-1]["file_id"])
    document = message.get("document")
    if document:
        view["document"] = {
            "url": _file_url(document["file_id"]),
            "name": document.get("file_name") or document["file_id"],
            "size": int(document.get("file_size") or 0),
        }
    if "edit_date" in message:
        view["edited"] = True
    return view


def _file_url(file_id: str) -> str:
    return f"/sandbox/api/file/{quote(file_id, safe='')}"


def labels(lang: str) -> JSON:
    """Return the page's texts in `lang` (the catalog's `sandbox.page.*` keys)."""
    prefix = "sandbox.page."
    return {k.removeprefix(prefix): v for k, v in catalog(lang).items() if k.startswith(prefix)}


async def state(sandbox: Sandbox) -> JSON:
    """Return the clock, the next deadline and every persona's chat."""
    lang = sandbox.language
    now = sandbox.clock()
    body: JSON = {
        "ready": sandbox.ready.is_set(),
        "clock": {"iso": now.isoformat(), "text": format_moment(now, sandbox.timezone, lang)},
        "deadline": None,
        "personas": [],
    }
    if not sandbox.ready.is_set():
        return body
    upcoming = await next_deadline_titles(sandbox.db, now)
    if upcoming is not None:
        due, titles = upcoming
        separator = plain("reminders.separator", lang)
        body["deadline"] = plain(
            "sandbox.page.deadline_of",
            lang,
            due=format_moment(due, sandbox.timezone, lang),
            tasks=separator.join(titles),
        )
    answers = _answers(sandbox)
    for persona in sandbox.personas:
        body["personas"].append(
            {
                "key": persona.key,
                "role": persona.role,
                "role_label": plain(f"role.{persona.role}", lang),
                "unit": persona.unit,
                "name": persona.user.first_name,
                "messages": [
                    message_view(sandbox, persona, msg) for msg in sandbox.srv.history(persona.user)
                ],
                "toasts": answers.get(persona.key, []),
                "commands": [
                    {"command": f"/{c['command']}", "description": c["description"]}
                    for c in sandbox.srv.menu(persona.user)
                ],
            }
        )
    return body


def _answers(sandbox: Sandbox) -> dict[str, list[JSON]]:
    """Return the bot's answers to each persona's button presses (the toasts), by persona."""
    out: dict[str, list[JSON]] = {}
    for answer in sandbox.srv.callback_answers:
        query = str(answer.get("callback_query_id", ""))
        key = sandbox.queries.get(query)
        if key is not None and answer.get("text"):
            out.setdefault(key, []).append({"id": query, "text": str(answer["text"])})
    return out


def routes(sandbox: Sandbox) -> list[web.RouteDef]:
    """Return the page's routes, bound to one running sandbox."""

    async def page(request: web.Request) -> web.Response:
        text = (STATIC / "index.html").read_text(encoding="utf-8")
        text = text.replace("{{lang}}", "zh-CN" if sandbox.language == "zh" else "en")
        text = text.replace("{{title}}", html.escape(plain("sandbox.page.title", sandbox.language)))
        return web.Response(text=text, content_type="text/html", headers=_NO_STORE)

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound()
        return web.Response(
            body=(STATIC / name).read_bytes(), content_type=STATIC_FILES[name], headers=_NO_STORE
        )

    async def get_state(request: web.Request) -> web.Response:
        body = await state(sandbox)
        body["labels"] = labels(sandbox.language)
        return web.json_response(body, headers=_NO_STORE)

    async def send(request: web.Request) -> web.Response:
        persona, body = await _json_persona(request, sandbox)
        text = str(body.get("text", "")).strip()
        if not text or len(text) > MAX_TEXT:
            raise _refuse(sandbox, "sandbox.page.bad_text")
        sandbox.srv.send_text(persona.user, text)
        return web.json_response({"ok": True})

    async def upload(request: web.Request) -> web.Response:
        _check_header(request, sandbox)
        if (request.content_length or 0) > MAX_UPLOAD + 64 * 1024:
            raise _refuse(sandbox, "sandbox.page.too_big")
        form = await request.post()
        persona = sandbox.persona(str(form.get("persona", "")))
        if persona is None:
            raise _refuse(sandbox, "sandbox.page.no_persona")
        part = form.get("file")
        if not isinstance(part, web.FileField):
            raise _refuse(sandbox, "sandbox.page.no_file")
        content = part.file.read()
        if not content or len(content) > MAX_UPLOAD:
            raise _refuse(sandbox, "sandbox.page.too_big")
        caption = str(form.get("caption", "")).strip() or None
        name = part.filename or "file"
        mime = part.content_type or mimetypes.guess_type(name)[0]
        if mime in ("image/jpeg", "image/png") and form.get("as_photo") == "1":
            sandbox.srv.send_photo(persona.user, content, caption)
        else:
            sandbox.srv.send_document(persona.user, name, content, caption, mime_type=mime)
        return web.json_response({"ok": True})

    async def press(request: web.Request) -> web.Response:
        persona, body = await _json_persona(request, sandbox)
        chat = persona.user.id
        message = next(
            (m for m in sandbox.srv.history(chat) if m["message_id"] == body.get("message_id")),
            None,
        )
        if message is None:
            raise _refuse(sandbox, "sandbox.page.no_message")
        try:
            update = sandbox.srv.press_button(persona.user, message, str(body.get("data", "")))
        except ValueError:
            raise _refuse(sandbox, "sandbox.page.no_button") from None
        sandbox.queries[update["callback_query"]["id"]] = persona.key
        return web.json_response({"ok": True})

    async def move(request: web.Request) -> web.Response:
        _check_header(request, sandbox)
        body = await _json(request, sandbox)
        what = str(body.get("move", ""))
        if what not in MOVES:
            raise _refuse(sandbox, "sandbox.page.bad_move")
        if not sandbox.ready.is_set():
            raise _refuse(sandbox, "sandbox.page.not_ready", status=503)
        moment = await sandbox.move(what)
        if moment is None:
            raise _refuse(sandbox, "sandbox.page.no_deadline", status=409)
        return web.json_response(
            {"ok": True, "clock": format_moment(moment, sandbox.timezone, sandbox.language)}
        )

    async def file(request: web.Request) -> web.Response:
        found = sandbox.srv.file(request.match_info["file_id"])
        if found is None:
            raise web.HTTPNotFound()
        content, mime, name = found
        headers = dict(_NO_STORE)
        headers["X-Content-Type-Options"] = "nosniff"
        if mime not in ("image/jpeg", "image/png"):
            # Anything else is a download, never rendered by the page's origin.
            mime = "application/octet-stream"
            filename = quote(name or "file", safe="")
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{filename}"
        return web.Response(body=content, content_type=mime, headers=headers)

    return [
        web.get("/sandbox", _redirect),
        web.get("/sandbox/", page),
        web.get("/sandbox/static/{name}", static),
        web.get("/sandbox/api/state", get_state),
        web.post("/sandbox/api/send", send),
        web.post("/sandbox/api/upload", upload),
        web.post("/sandbox/api/press", press),
        web.post("/sandbox/api/clock", move),
        web.get("/sandbox/api/file/{file_id}", file),
    ]


_NO_STORE = {"Cache-Control": "no-store"}


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/sandbox/")


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    409: web.HTTPConflict,
    503: web.HTTPServiceUnavailable,
}


def _refuse(sandbox: Sandbox, key: str, status: int = 400) -> web.HTTPException:
    """Return the error to raise: a JSON body with the reason in the page's language."""
    return _error(status, plain(key, sandbox.language))


def _error(status: int, text: str) -> web.HTTPException:
    body = json.dumps({"ok": False, "error": text}, ensure_ascii=False)
    return _ERRORS.get(status, web.HTTPBadRequest)(text=body, content_type="application/json")


def _check_header(request: web.Request, sandbox: Sandbox) -> None:
    if request.headers.get("X-Sandbox") != "1":
        raise _error(403, plain("sandbox.page.forbidden", sandbox.language))


async def _json(request: web.Request, sandbox: Sandbox) -> JSON:
    try:
        body = await request.json()
    except ValueError:
        raise _refuse(sandbox, "sandbox.page.bad_request") from None
    if not isinstance(body, dict):
        raise _refuse(sandbox, "sandbox.page.bad_request")
    return body


async def _json_persona(request: web.Request, sandbox: Sandbox) -> tuple[Persona, JSON]:
    _check_header(request, sandbox)
    body = await _json(request, sandbox)
    persona = sandbox.persona(str(body.get("persona", "")))
    if persona is None:
        raise _refuse(sandbox, "sandbox.page.no_persona")
    if not sandbox.ready.is_set():
        raise _refuse(sandbox, "sandbox.page.not_ready", status=503)
    return persona, body
