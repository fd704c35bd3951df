"""`duban run` and `duban invite` against every way the Bot API can fail or answer at start-up.

Each failure (wrong token, unknown host, refused connection, TLS failure, 5xx, time-out, a
dead proxy) must end in one line naming the Bot API's host and what to check; and the
token must appear in no byte the process wrote — stdout, stderr (with --debug: tracebacks,
request URLs) or any file it left behind. The Bot API is the local server on 127.0.0.1,
or a closed port, a `.invalid` host name, a plain-HTTP server addressed with https, a server
that never answers: the internet is never reached.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from bot.services.invites import hash_code, hint_of
from sandbox.botapi import LocalBotAPI
from sandbox.botapi.server import Faults
from tests.cli import Result, clean_env, duban_command, run_duban
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.e2e

TOKEN = "246810:startup-SECRET_token-value"


def closed_port() -> int:
    """Return a 127.0.0.1 port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """Accept connections on 127.0.0.1 and never answer: a Bot API that times out."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()


async def run_once(tmp: Path, env: dict[str, str], *args: str) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *duban_command(),
        *args,
        cwd=tmp,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    except TimeoutError:
        proc.send_signal(signal.SIGTERM)
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def assert_no_token(where: Path, *results: Result) -> None:
    """The token, plain or URL-encoded, in no output and no file the process wrote."""
    forms = {TOKEN, quote(TOKEN, safe=""), TOKEN.split(":", 1)[1]}
    for result in results:
        for form in forms:
            assert form not in result.out and form not in result.err, result.err[-2000:]
    for path in where.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for form in forms:
                assert form.encode() not in data, path


async def start_up(tmp: Path, base_url: str, **extra: str) -> tuple[Result, Result]:
    """Run `duban run` twice (plain and --debug); return both results."""
    env = clean_env(
        DUBAN_TELEGRAM_TOKEN=TOKEN,
        DUBAN_TELEGRAM_BASE_URL=base_url,
        DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'duban.db'}",
        **extra,
    )
    plain = await run_once(tmp, env, "run", "--plan", str(EXAMPLE))
    debug = await run_once(tmp, env, "run", "--debug")
    return plain, debug


def the_line(result: Result) -> str:
    """Return the one error line; everything else on stderr is a log line."""
    assert result.code == 1, result.err[-2000:]
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.startswith("duban:")]
    assert len(lines) == 1, result.err[-2000:]
    return lines[0]


async def test_a_wrong_token(tmp_path: Path) -> None:
    async with LocalBotAPI(token="246810:the-right-one") as srv:
        plain, debug = await start_up(tmp_path, srv.base_url)
        host = f"127.0.0.1:{srv.port}"
    line = the_line(plain)
    assert f"无法使用 Bot API（{host}）：令牌被拒绝" in line and "DUBAN_TELEGRAM_TOKEN" in line
    assert debug.code == 1
    assert_no_token(tmp_path, plain, debug)


async def test_an_unknown_host(tmp_path: Path) -> None:
    plain, debug = await start_up(tmp_path, "https://api.telegram.invalid/bot")
    line = the_line(plain)
    assert "api.telegram.invalid" in line and "找不到该主机名" in line
    assert "[telegram] proxy" in line and "base_url" in line
    assert_no_token(tmp_path, plain, debug)


async def test_a_refused_connection(tmp_path: Path) -> None:
    port = closed_port()
    plain, debug = await start_up(tmp_path, f"http://127.0.0.1:{port}/bot")
    line = the_line(plain)
    assert f"127.0.0.1:{port}" in line and "连接被拒绝" in line
    assert_no_token(tmp_path, plain, debug)


async def test_a_tls_failure(tmp_path: Path) -> None:
    async with LocalBotAPI(token=TOKEN) as srv:
        # Plain HTTP addressed with https: the handshake fails.
        plain, debug = await start_up(tmp_path, f"https://127.0.0.1:{srv.port}/bot")
        port = srv.port
    line = the_line(plain)
    assert f"127.0.0.1:{port}" in line and "TLS" in line
    assert_no_token(tmp_path, plain, debug)


async def test_a_server_error(tmp_path: Path) -> None:
    faults = Faults(error_rate=1.0, status=502, methods=frozenset({"getme"}))
    async with LocalBotAPI(token=TOKEN, faults=faults) as srv:
        plain, debug = await start_up(tmp_path, srv.base_url)
    line = the_line(plain)
    assert "服务器返回错误（Bad Gateway）" in line
    assert_no_token(tmp_path, plain, debug)


async def test_a_time_out(tmp_path: Path) -> None:
    async with silent_server() as port:
        plain, debug = await start_up(tmp_path, f"http://127.0.0.1:{port}/bot")
    line = the_line(plain)
    assert f"127.0.0.1:{port}" in line and "没有回应" in line
    assert_no_token(tmp_path, plain, debug)


async def test_a_dead_proxy_is_named(tmp_path: Path) -> None:
    port = closed_port()
    plain, debug = await start_up(
        tmp_path,
        "https://api.telegram.org/bot",
        DUBAN_TELEGRAM_PROXY=f"socks5://127.0.0.1:{port}",
        DUBAN_UI_DEFAULT_LANGUAGE="en",
    )
    line = the_line(plain)
    assert f"cannot use the Bot API at api.telegram.org through the proxy 127.0.0.1:{port}" in line
    assert "[telegram] proxy" in line
    assert_no_token(tmp_path, plain, debug)


def test_a_malformed_proxy_names_the_key(tmp_path: Path) -> None:
    result = run_duban(
        "run", cwd=tmp_path, env=clean_env(DUBAN_TELEGRAM_TOKEN=TOKEN, DUBAN_TELEGRAM_PROXY="1080")
    )
    assert result.code == 1
    assert 'DUBAN_TELEGRAM_PROXY: telegram.proxy: expected "http://host:port"' in result.err
    assert TOKEN not in result.err + result.out


# ------------------------------------------------ 1. invite links before the first run


async def test_invite_links_before_the_first_run(tmp_path: Path) -> None:
    db_env = {"DUBAN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}"}
    assert run_duban("plan", "load", str(EXAMPLE), cwd=tmp_path, env=clean_env(**db_env)).code == 0

    def invite(**env: str) -> Result:
        return run_duban("invite", "contact", "甲县", cwd=tmp_path, env=clean_env(**db_env, **env))

    # Nothing knows the name: the bare code and how to send it.
    bare = await asyncio.to_thread(invite)
    assert "t.me" not in bare.out and "/start " in bare.out
    # The configured name, no token needed.
    named = await asyncio.to_thread(invite, DUBAN_TELEGRAM_BOT_USERNAME="@office_duban_bot")
    assert re.search(r"https://t\.me/office_duban_bot\?start=\S+", named.out), named.out
    async with LocalBotAPI(token=TOKEN, bot_username="first_hour_bot") as srv:
        # A token and no run yet: getMe answers.
        asked = await asyncio.to_thread(
            invite, DUBAN_TELEGRAM_TOKEN=TOKEN, DUBAN_TELEGRAM_BASE_URL=srv.base_url
        )
        assert [r.method for r in srv.requests] == ["getMe"]
    assert re.search(r"https://t\.me/first_hour_bot\?start=\S+", asked.out), asked.out
    # getMe's answer was cached: later, without a token, the link still comes.
    cached = await asyncio.to_thread(invite)
    assert "https://t.me/first_hour_bot?start=" in cached.out
    # A token with no way to the Bot API costs a short wait, then the cache.
    dead = await asyncio.to_thread(
        invite,
        DUBAN_TELEGRAM_TOKEN=TOKEN,
        DUBAN_TELEGRAM_BASE_URL=f"http://127.0.0.1:{closed_port()}/bot",
    )
    assert dead.code == 0 and "https://t.me/first_hour_bot?start=" in dead.out
    assert_no_token(tmp_path, bare, named, asked, cached, dead)


# ------------------------------------------------------------------ 2. the first admin


async def test_the_first_admin_is_guided_and_logged(tmp_path: Path) -> None:
    async with LocalBotAPI(token=TOKEN, bot_username="first_hour_bot") as srv:
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}",
        )
        assert run_duban("plan", "load", str(EXAMPLE), cwd=tmp_path, env=env).code == 0

        runs = iter(range(10))

        async def run_until_polling() -> tuple[asyncio.subprocess.Process, Path]:
            log_path = tmp_path / f"run-{next(runs)}.log"
            log = log_path.open("wb")
            proc = await asyncio.create_subprocess_exec(
                *duban_command(), "run", cwd=tmp_path, env=env, stdout=log, stderr=log
            )
            log.close()
            before = len(srv.calls("getUpdates"))
            await srv.wait_for(lambda s: len(s.calls("getUpdates")) > before, timeout=60)
            return proc, log_path

        async def stop(proc: asyncio.subprocess.Process) -> None:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), timeout=30) == 0

        # No admin and no invite: the one line says how to make the first.
        proc, log_path = await run_until_polling()
        await stop(proc)
        first = log_path.read_text(encoding="utf-8")
        assert "机器人：@first_hour_bot（https://t.me/first_hour_bot）" in first
        assert "还没有管理员。运行 duban invite admin" in first

        made = await asyncio.to_thread(run_duban, "invite", "admin", cwd=tmp_path, env=env)
        code = re.search(r"https://t\.me/first_hour_bot\?start=(\S+)", made.out)
        assert code, made.out
        # An admin invite is waiting: the line says so, and how to redeem it.
        proc, log_path = await run_until_polling()
        waiting = log_path.read_text(encoding="utf-8")
        assert "还没有管理员。运行" not in waiting
        # The invite is named by its hint (the start of its hash, as `invite --list` shows):
        # the code itself is never stored.
        assert f"已有一个管理员邀请码（{hint_of(hash_code(code.group(1)))}…" in waiting
        assert "/start 邀请码" in waiting and "https://t.me/first_hour_bot?start=" in waiting

        admin = srv.add_user(first_name="管理员")
        srv.send_text(admin, f"/start {code.group(1)}")
        await srv.wait_for(lambda s: s.texts_to(admin.id), timeout=30)
        assert "登记成功" in srv.texts_to(admin.id)[0]
        await stop(proc)
        assert "first admin registered: 管理员" in log_path.read_text(encoding="utf-8")
    assert_no_token(tmp_path, made)


# --------------------------------------------------- 4. the way through a proxy


@asynccontextmanager
async def forwarding_proxy(target_port: int) -> AsyncIterator[tuple[int, list[int]]]:
    """An HTTP proxy on 127.0.0.1 that takes every request to the local Bot API server.

    The Bot API's host name (`api.telegram.invalid`) resolves nowhere: only a client that
    goes through the proxy reaches it. Yields the proxy's port and a list that grows by one
    per connection made through it.
    """
    connections: list[int] = []
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        # The server reads the absolute-form request line (POST http://host/bot…/getMe).
        for task in (
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        ):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), connections
    finally:
        for task in list(tasks):
            task.cancel()
        server.close()


async def test_the_bot_runs_through_a_proxy(tmp_path: Path) -> None:
    async with (
        LocalBotAPI(token=TOKEN, bot_username="proxied_bot") as srv,
        forwarding_proxy(srv.port) as (proxy_port, connections),
    ):
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=f"http://api.telegram.invalid:{srv.port}/bot",
            DUBAN_TELEGRAM_PROXY=f"http://127.0.0.1:{proxy_port}",
            DUBAN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'duban.db'}",
        )
        # The CLI's getMe goes the same way: the link comes before any run.
        loaded = await asyncio.to_thread(
            run_duban, "plan", "load", str(EXAMPLE), cwd=tmp_path, env=env
        )
        assert loaded.code == 0, loaded.err
        made = await asyncio.to_thread(
            run_duban, "invite", "contact", "甲县", cwd=tmp_path, env=env
        )
        link = re.search(r"https://t\.me/proxied_bot\?start=(\S+)", made.out)
        assert link, made.out + made.err
        log_path = tmp_path / "run.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                *duban_command(), "run", cwd=tmp_path, env=env, stdout=log, stderr=log
            )
        try:
            await srv.wait_for(lambda s: s.calls("getUpdates"), timeout=60)
            contact = srv.add_user(first_name="联络员")
            srv.send_text(contact, f"/start {link.group(1)}")
            await srv.wait_for(lambda s: s.texts_to(contact.id), timeout=30)
            assert "登记成功" in srv.texts_to(contact.id)[0]
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=30)
        assert proc.returncode == 0, log_path.read_text(encoding="utf-8")[-2000:]
        assert connections  # every request went through the proxy: the host resolves nowhere
    assert_no_token(tmp_path, made, loaded)
