"""Load config.toml and DUBAN_<SECTION>_<KEY> overrides into one typed model per section."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.textfile import TextFileError, read_text

DEFAULT_PATH = Path("config.toml")
ENV_PREFIX = "DUBAN_"


class ConfigError(Exception):
    """A configuration problem, told in one line that names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookConfig(_Section):
    """Where Telegram posts updates in webhook mode."""

    url: str = ""
    secret_token: SecretStr = SecretStr("")


class TelegramConfig(_Section):
    """How to reach the Bot API."""

    token: SecretStr = SecretStr("")
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = ""
    mode: Literal["polling", "webhook"] = "polling"
    max_messages_per_second: float = Field(default=30, gt=0, le=1000)
    # For invite links before the first `run` (else getMe, else the name `run` cached).
    bot_username: str = Field(default="", pattern=r"^@?[A-Za-z0-9_]{0,64}$")
    # "http://host:port" or "socks5://host:port": the way to the Bot API where it is not
    # reachable directly (mainland China). Through python-telegram-bot's HTTPXRequest.
    proxy: str = Field(default="", pattern=r"^$|^(https?|socks5h?)://\S+$")
    webhook: WebhookConfig = WebhookConfig()

    @property
    def username(self) -> str:
        """Return `bot_username` without a leading "@" ("" when not set)."""
        return self.bot_username.removeprefix("@")

    @property
    def file_url(self) -> str:
        """Return base_file_url, or base_url with its last `/bot` made `/file/bot`."""
        if self.base_file_url:
            return self.base_file_url
        head, sep, tail = self.base_url.rpartition("/bot")
        return f"{head}/file/bot{tail}" if sep else self.base_url


class DatabaseConfig(_Section):
    """Which database holds the campaigns."""

    url: str = "sqlite+aiosqlite:///duban.db"


class SchedulerConfig(_Section):
    """How often the scheduler looks for due work."""

    tick_seconds: float = Field(default=60, gt=0, le=3600)


class HttpConfig(_Section):
    """duban's own web server (webhook endpoint, health check, calendar feeds)."""

    listen: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""


class UiConfig(_Section):
    """What people see before they choose."""

    default_language: Literal["zh", "en"] = "zh"


class Config(_Section):
    """The whole configuration."""

    telegram: TelegramConfig = TelegramConfig()
    database: DatabaseConfig = DatabaseConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    http: HttpConfig | None = None
    ui: UiConfig = UiConfig()
    source: str = Field(default="built-in defaults", exclude=True)

    def require_token(self) -> str:
        """Return the bot token, or fail naming the key that must be set."""
        token = self.telegram.token.get_secret_value()
        if not token:
            raise ConfigError(
                "telegram.token is not set: put it in [telegram] token or DUBAN_TELEGRAM_TOKEN"
            )
        return token


# Sections and the models they validate against, for env overrides and error messages.
_SECTIONS: dict[tuple[str, ...], type[_Section]] = {
    ("telegram",): TelegramConfig,
    ("telegram", "webhook"): WebhookConfig,
    ("database",): DatabaseConfig,
    ("scheduler",): SchedulerConfig,
    ("http",): HttpConfig,
    ("ui",): UiConfig,
}


def _env_overrides(env: Mapping[str, str]) -> dict[tuple[str, ...], Any]:
    """Map DUBAN_* variables to (section..., key); unknown names are an error."""
    names: dict[str, tuple[str, ...]] = {}
    for section, model in _SECTIONS.items():
        for field_name, info in model.model_fields.items():
            if isinstance(info.annotation, type) and issubclass(info.annotation, _Section):
                continue
            names["_".join((*section, field_name)).upper()] = (*section, field_name)
    out: dict[tuple[str, ...], Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ("DUBAN_CONFIG",):
            continue
        path = names.get(name[len(ENV_PREFIX) :])
        if path is None:
            raise ConfigError(
                f"{name}: unknown setting (known: DUBAN_{', DUBAN_'.join(sorted(names))})"
            )
        out[path] = value
    return out


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


# What a key with a pattern must look like, for its error message.
_FORMATS = {
    "telegram.proxy": '"http://host:port" or "socks5://host:port"',
    "telegram.bot_username": "the bot's username (letters, digits, _), e.g. duban_bot",
}


def _describe_error(error: Any, source: str) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{source}: {loc}: unknown key"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{source}: {loc}: must be one of {expected}"
    if kind in ("model_type", "dict_type"):
        return f"{source}: {loc}: expected a table [{loc}]"
    if kind == "string_pattern_mismatch" and loc in _FORMATS:
        return f"{source}: {loc}: expected {_FORMATS[loc]}"
    # Never echo the value: it may be the token or a database password.
    message = error["msg"].replace("Input should be", "expected").replace("input", "value")
    return f"{source}: {loc}: {message}"


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the configuration file (if any) and apply environment overrides."""
    env = os.environ if env is None else env
    explicit = path is not None
    file = Path(path) if path is not None else DEFAULT_PATH
    data: dict[str, Any] = {}
    source = "built-in defaults"
    if file.exists():
        try:
            data = tomllib.loads(read_text(file))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except TextFileError as exc:
            raise ConfigError(str(exc)) from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
        source = str(file)
    elif explicit:
        raise ConfigError(f"{file}: config file not found")
    overrides = _env_overrides(env)
    for key_path, value in overrides.items():
        # Environment strings are coerced by pydantic's lax mode (e.g. "60" -> 60.0).
        _set(data, key_path, value)
    try:
        return Config.model_validate({**data, "source": source})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        if loc in overrides:
            source = ENV_PREFIX + "_".join(loc).upper()
        raise ConfigError(_describe_error(first, source)) from None
