"""The newcomer test: the README's quick start, taken from the README and run literally.

A copy of the repository in a temporary folder, a fresh virtual environment made by the
quick start's own first line, every command as written — only the token placeholder is
filled in, and the Bot API is the local server (`DUBAN_TELEGRAM_BASE_URL` in the
environment, as an operator behind a self-hosted Bot API would set it). It ends with an
invite link printed, the admin redeemed in the chat and `/status` answered, so the README
cannot drift from what works.

How the lines are run (so that the quick start may grow, e.g. a sandbox as its first
command): the block is one bash script (`set -euo pipefail`), line by line. A line that
runs `duban run --sandbox` is started in the background, left until the page it prints
(`http://127.0.0.1:…`) answers, then stopped; a line that runs the bot (`duban run`) is
started in the background and the test talks to it through the local Bot API server, then
stops it with SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.botapi import LocalBotAPI
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- quickstart:(?P<lang>\w+)[^>]*-->\s*```bash\n(?P<body>.*?)```", re.S)
PLACEHOLDERS = ("<令牌>", "<token>")
TOKEN = "777001:newcomer-SECRET-token"
BOT = "newcomer_duban_bot"
RUN = re.compile(r"(^|[;&|]\s*)duban run\b")

# Bash helpers the generated script calls for the serving lines (see the module docstring).
PRELUDE = r"""
set -euo pipefail
set -m   # background jobs get their own process group: stopping one stops all of it
wait_for_page() {  # wait_for_page LOG: until the first 127.0.0.1 URL in LOG answers
    for _ in $(seq 1 300); do
        url=$(grep -o 'http://127\.0\.0\.1:[0-9]*[^ ]*' "$1" | head -n 1 || true)
        if [ -n "$url" ] && curl -fsS -o /dev/null --max-time 5 "$url"; then
            return 0
        fi
        sleep 1
    done
    echo "newcomer: the page never answered" >&2
    return 1
}
"""


def quick_starts(text: str) -> dict[str, str]:
    """Return each marked quick-start block of the README, by language."""
    return {m["lang"]: m["body"] for m in BLOCK.finditer(text)}


def commands(block: str) -> list[str]:
    """Return a block's command lines (no comments, no blank lines)."""
    return [
        line.strip()
        for line in block.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def script(block: str) -> str:
    """Turn a quick-start block into the bash script the test runs."""
    out = [PRELUDE]
    for raw in block.splitlines():
        line = raw
        for placeholder in PLACEHOLDERS:
            line = line.replace(placeholder, TOKEN)
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or not RUN.search(stripped):
            out.append(line)
        elif "--sandbox" in stripped:
            out.append(f"{{ {stripped} ; }} > sandbox.log 2>&1 &")
            out.append("sandbox=$!; wait_for_page sandbox.log; kill -TERM -- -$sandbox")
            out.append("wait $sandbox || true")
        else:
            # A simple command is backgrounded as itself, so that $! is the bot's process.
            simple = not re.search(r"&&|\|\||[;|]", stripped)
            out.append(
                f"{stripped} > run.log 2>&1 &" if simple else f"{{ {stripped} ; }} > run.log 2>&1 &"
            )
            out.append("echo $! > run.pid; wait $!")
    return "\n".join(out) + "\n"


def test_both_quick_starts_are_the_same_commands() -> None:
    blocks = quick_starts(README.read_text(encoding="utf-8"))
    assert set(blocks) == {"zh", "en"}
    zh, en = (commands(blocks[lang]) for lang in ("zh", "en"))
    assert [line.replace("<令牌>", "<token>") for line in zh] == en
    # A virtual environment first, a campaign that is current, a run at the end.
    assert zh[0].startswith("python3 -m venv .venv && . .venv/bin/activate")
    assert "duban plan example -o campaign.toml" in zh
    assert not any("examples/campaign.toml" in line for line in zh)
    assert RUN.search(zh[-1])


def _copy_repository(target: Path) -> Path:
    """Copy the working tree's files (tracked and new, never ignored ones) into `target`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _fresh_env(**extra: str) -> dict[str, str]:
    """The environment of a newcomer's shell: no duban settings, no virtual environment."""
    venv = Path(sys.prefix)
    path = [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(venv))
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DUBAN_", "PYTHON", "VIRTUAL_ENV", "PYTEST"))
    }
    env["PATH"] = os.pathsep.join(path)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


async def test_a_newcomer_follows_the_quick_start(tmp_path: Path) -> None:
    block = quick_starts(README.read_text(encoding="utf-8"))["zh"]
    repo = _copy_repository(tmp_path / "duban")
    (repo / "quickstart.sh").write_text(script(block), encoding="utf-8")
    log_path = tmp_path / "quickstart.log"
    async with LocalBotAPI(token=TOKEN, bot_username=BOT) as srv:
        env = _fresh_env(DUBAN_TELEGRAM_BASE_URL=srv.base_url)
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                "bash", "quickstart.sh", cwd=repo, env=env, stdout=log, stderr=log
            )
        try:
            # Installing into a fresh environment takes a while; then the bot polls.
            await srv.wait_for(lambda s: s.calls("getUpdates"), timeout=900)
            printed = log_path.read_text(encoding="utf-8", errors="replace")
            links = re.findall(rf"https://t\.me/{BOT}\?start=(\S+)", printed)
            assert len(links) == 2, printed[-3000:]  # admin, then the contact of 甲县

            admin = srv.add_user(first_name="新管理员")
            srv.send_text(admin, f"/start {links[0]}")
            await srv.wait_for(lambda s: s.texts_to(admin.id), timeout=60)
            assert "登记成功" in srv.texts_to(admin.id)[0]
            assert "管理员" in srv.texts_to(admin.id)[0]
            srv.send_text(admin, "/status")
            await srv.wait_for(lambda s: len(s.texts_to(admin.id)) >= 2, timeout=60)
            status = srv.texts_to(admin.id)[1]
            assert "职工队伍稳定调研排查化解专项工作" in status
            assert "逾期 3" not in status  # the example starts today: nothing is years late
        finally:
            pid_file = repo / "run.pid"
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            elif proc.returncode is None:
                proc.kill()
            await asyncio.wait_for(proc.wait(), timeout=60)
    output = log_path.read_text(encoding="utf-8", errors="replace")
    run_log = (repo / "run.log").read_text(encoding="utf-8", errors="replace")
    assert proc.returncode == 0, output[-3000:] + run_log[-3000:]
    assert "Traceback" not in output + run_log
    assert "first admin registered: 新管理员" in run_log
    assert TOKEN not in output + run_log
