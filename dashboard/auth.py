"""Who opens the dashboard: Telegram's signed login data checked, then a signed session cookie.

Two ways in, both signed by Telegram with the bot's token (SPEC §8):

- a Mini App's `initData` (https://core.telegram.org/bots/webapps#validating-data-received-via-
  the-mini-app): HMAC-SHA256 over the sorted `key=value` lines, key = HMAC("WebAppData", token);
- the Login Widget's fields (https://core.telegram.org/widgets/login#checking-authorization):
  the same lines, key = SHA256(token).

Either must be at most `MAX_AGE` old. Then the person gets a session cookie signed by duban
(HMAC-SHA256 with a key derived from the token), HttpOnly, SameSite=Strict, with an expiry, and
a CSRF token that every action must repeat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

# How old Telegram's login data may be (SPEC §8: not older than a day).
MAX_AGE = timedelta(days=1)
# How long a dashboard session lasts before Telegram's data must be shown again.
SESSION_LIFETIME = timedelta(hours=12)
# Login data is short; anything longer is not worth hashing.
MAX_LOGIN_DATA = 4096


class BadLogin(Exception):
    """Login data that is not Telegram's, or too old; `reason` says which, for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TelegramLogin:
    """A Telegram account that proved who it is."""

    telegram_id: int
    name: str
    username: str | None
    language_code: str | None
    auth_date: datetime


def _check_string(fields: Mapping[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields))


def _check_age(raw: str | None, now: datetime) -> datetime:
    if raw is None or not raw.isdigit():
        raise BadLogin("no auth_date")
    moment = datetime.fromtimestamp(int(raw), tz=now.tzinfo)
    if now - moment > MAX_AGE:
        raise BadLogin("expired")
    if moment - now > timedelta(minutes=5):
        raise BadLogin("from the future")
    return moment


def check_init_data(init_data: str, token: str, now: datetime) -> TelegramLogin:
    """Return the account a Mini App's `initData` (a query string) was signed for.

    Raises BadLogin when the hash is missing or wrong (forged, or signed for another bot),
    when `auth_date` is older than MAX_AGE, or when the data holds no user.
    """
    if not init_data or len(init_data) > MAX_LOGIN_DATA:
        raise BadLogin("no init data")
    fields = dict(parse_qsl(init_data, keep_blank_values=True, strict_parsing=False))
    given = fields.pop("hash", "")
    # Newer clients add a third-party `signature`; it is part of the signed lines.
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret, _check_string(fields).encode(), hashlib.sha256).hexdigest()
    if not given or not hmac.compare_digest(given, expected):
        raise BadLogin("bad hash")
    moment = _check_age(fields.get("auth_date"), now)
    try:
        user = json.loads(fields.get("user", ""))
        telegram_id = int(user["id"])
    except (ValueError, TypeError, KeyError):
        raise BadLogin("no user") from None
    name = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
    return TelegramLogin(
        telegram_id,
        name,
        user.get("username"),
        user.get("language_code"),
        moment,
    )


WIDGET_FIELDS = ("id", "first_name", "last_name", "username", "photo_url", "auth_date")


def check_login_widget(fields: Mapping[str, str], token: str, now: datetime) -> TelegramLogin:
    """Return the account the Login Widget's fields (its redirect's query) were signed for.

    Raises BadLogin when the hash is missing or wrong, or `auth_date` is older than MAX_AGE.
    """
    signed = {k: v for k, v in fields.items() if k in WIDGET_FIELDS}
    given = fields.get("hash", "")
    if sum(len(v) for v in signed.values()) > MAX_LOGIN_DATA:
        raise BadLogin("too long")
    secret = hashlib.sha256(token.encode()).digest()
    expected = hmac.new(secret, _check_string(signed).encode(), hashlib.sha256).hexdigest()
    if not given or not hmac.compare_digest(given, expected):
        raise BadLogin("bad hash")
    moment = _check_age(signed.get("auth_date"), now)
    raw_id = signed.get("id", "")
    if not raw_id.isdigit():
        raise BadLogin("no user")
    name = " ".join(signed.get(k, "") for k in ("first_name", "last_name")).strip()
    return TelegramLogin(int(raw_id), name, signed.get("username"), None, moment)


@dataclass(frozen=True)
class Session:
    """A signed-in dashboard visitor: their Telegram id, when the session ends, its CSRF token."""

    telegram_id: int
    expires: datetime
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issue and check session cookies, signed with a key derived from the bot's token."""

    def __init__(self, token: str) -> None:
        # A key of its own: a session value can never pass for Telegram's signature or back.
        self._key = hmac.new(b"duban-dashboard-session", token.encode(), hashlib.sha256).digest()

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, telegram_id: int, now: datetime) -> tuple[str, Session]:
        """Return (cookie value, session) for a person who just proved who they are."""
        session = Session(telegram_id, now + SESSION_LIFETIME, secrets.token_urlsafe(24))
        body = _b64(
            json.dumps(
                {"t": telegram_id, "e": int(session.expires.timestamp()), "c": session.csrf},
                separators=(",", ":"),
            ).encode()
        )
        return f"{body}.{self._sign(body)}", session

    def check(self, value: str | None, now: datetime) -> Session | None:
        """Return the session a cookie value carries, or None when forged, malformed or expired."""
        if not value or len(value) > 512 or value.count(".") != 1:
            return None
        body, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
            telegram_id, expires, csrf = int(data["t"]), int(data["e"]), str(data["c"])
        except (ValueError, TypeError, KeyError):
            return None
        moment = datetime.fromtimestamp(expires, tz=now.tzinfo)
        if moment <= now:
            return None
        return Session(telegram_id, moment, csrf)
