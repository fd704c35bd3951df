"""Render the README's pictures from the example campaign with some submissions.

    .venv/bin/python docs/images/make_images.py

Writes chart.png and bulletin.png beside this file (a throwaway SQLite database is used).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root: bot/ and tests/

from bot.db.engine import Database  # noqa: E402
from bot.db.migrate import upgrade  # noqa: E402
from bot.reports.bulletin import bulletin_data, draw_bulletin  # noqa: E402
from bot.reports.chart import draw_chart  # noqa: E402
from bot.reports.figures import chart_data  # noqa: E402
from bot.services.campaigns import pick_campaign  # noqa: E402
from tests.reports_world import NOW, seed  # noqa: E402


async def main() -> None:
    """Seed a database and write both pictures."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/images.db")
        try:
            await upgrade(db)
            await seed(db)
            async with db.read() as session:
                campaign = await pick_campaign(session)
                chart = draw_chart(await chart_data(session, campaign, NOW), "zh")
                bulletin = draw_bulletin(await bulletin_data(session, campaign, NOW), "zh")
        finally:
            await db.dispose()
    for name, picture in (("chart.png", chart), ("bulletin.png", bulletin)):
        (HERE / name).write_bytes(picture.png)
        print(f"{name}: {picture.width_px}×{picture.height_px}, {len(picture.png) // 1024} KiB")


if __name__ == "__main__":
    asyncio.run(main())
