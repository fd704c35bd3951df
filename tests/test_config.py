"""Configuration: TOML plus DUBAN_* overrides, one clear line per mistake, no leaked token."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

TOKEN = "123456:SECRET-token-never-shown"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.database.url == "sqlite+aiosqlite:///duban.db"
    assert config.telegram.mode == "polling"
    assert config.telegram.file_url == "https://api.telegram.org/file/bot"
    assert config.ui.default_language == "zh"
    assert config.http is None


def test_example_config_is_valid() -> None:
    config = load_config(Path(__file__).parent.parent / "config.example.toml", env={})
    assert config.http is not None and config.http.port == 8080


def test_env_wins_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[telegram]\ntoken = "file-token"\n[scheduler]\ntick_seconds = 30\n')
    config = load_config(
        path,
        env={
            "DUBAN_TELEGRAM_TOKEN": TOKEN,
            "DUBAN_SCHEDULER_TICK_SECONDS": "5",
            "DUBAN_TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",
            "DUBAN_TELEGRAM_WEBHOOK_SECRET_TOKEN": "s3cret",
        },
    )
    assert config.require_token() == TOKEN
    assert config.scheduler.tick_seconds == 5
    assert config.telegram.file_url == "http://127.0.0.1:9/file/bot"
    assert config.telegram.webhook.secret_token.get_secret_value() == "s3cret"
    assert TOKEN not in repr(config) and TOKEN not in str(config.model_dump())


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("[telegram]\ntokn = 'x'\n", {}, "telegram.tokn: unknown key"),
        ("[databse]\nurl = 'x'\n", {}, "databse: unknown key"),
        ("[scheduler]\ntick_seconds = 'often'\n", {}, "scheduler.tick_seconds: expected"),
        ("[telegram]\nmode = 'push'\n", {}, "telegram.mode: must be one of"),
        ("[ui]\ndefault_language = 'fr'\n", {}, "ui.default_language: must be one of"),
        ("[http]\nport = 70000\n", {}, "http.port"),
        ("", {"DUBAN_SCHEDULER_TICK_SECONDS": "soon"}, "DUBAN_SCHEDULER_TICK_SECONDS: scheduler"),
        ("", {"DUBAN_DATABASE_URLL": "x"}, "DUBAN_DATABASE_URLL: unknown setting"),
        ("[telegram\n", {}, "not valid TOML"),
    ],
)
def test_mistakes_are_one_line_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_missing_token_is_named(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={})
    with pytest.raises(ConfigError, match=r"telegram\.token"):
        config.require_token()


def test_wrong_typed_token_does_not_echo_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "[telegram]\ntoken = 123456789\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert "telegram.token" in str(caught.value)
    assert "123456789" not in str(caught.value)


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})
