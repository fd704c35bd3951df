"""Start `duban run` on a database against the local Bot API server and print its peak memory.

python bench/run_memory.py DATABASE_URL
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from sandbox.botapi import LocalBotAPI
from tests.cli import clean_env, duban_command

TOKEN = "123456:BENCH"


def peak_rss_mb(pid: int) -> float:
    """Return a process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(url: str) -> None:
    """Run the bot for a few ticks, then read its memory and stop it."""
    async with LocalBotAPI(token=TOKEN) as srv:
        env = clean_env(
            DUBAN_TELEGRAM_TOKEN=TOKEN,
            DUBAN_TELEGRAM_BASE_URL=srv.base_url,
            DUBAN_DATABASE_URL=url,
            DUBAN_SCHEDULER_TICK_SECONDS="1",
        )
        with tempfile.TemporaryDirectory() as folder:
            log = Path(folder) / "run.log"
            with log.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    *duban_command(), "run", cwd=folder, env=env, stdout=out, stderr=out
                )
            try:
                await srv.wait_for(lambda s: s.calls("getUpdates"), timeout=120)
                await asyncio.sleep(5)  # a few ticks and sender polls
                rss = peak_rss_mb(proc.pid)
            finally:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
    print(f"memory of duban run: peak RSS {rss:.0f} MB")
    print(json.dumps({"peak_rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main(sys.argv[1]))
