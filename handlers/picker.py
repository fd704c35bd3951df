"""Choosing units for /assign and /notice: all, one kind, or units ticked on buttons.

The choice lives in the open conversation (`target`, `chosen`, `page`), so any process can
take the next press. Buttons: `cb.UNITS_CHOICE` (all, pick, done), `cb.UNITS_KIND`,
`cb.UNITS_TOGGLE`, `cb.UNITS_PAGE`.
"""

from __future__ import annotations

from typing import Any

from bot.i18n import t
from bot.messages import callbacks as cb
from bot.services.access import Caller
from bot.services.lookup import live_kinds, live_units
from handlers.common import Buttons, Ctx

PAGE = 16  # unit buttons per page (two a row)


async def target_buttons(ctx: Ctx, caller: Caller) -> Buttons:
    """Return the first choice: all units, each kind, or choose units one by one."""
    rows: list[list[tuple[str, str]]] = [
        [(t("work.units_all", ctx.lang), cb.UNITS_CHOICE.data("all"))]
    ]
    rows += [
        [(t("work.units_kind", ctx.lang, kind=kind.name), cb.UNITS_KIND.data(kind.id))]
        for kind in await live_kinds(ctx.session, caller.campaign.id)
    ]
    rows.append([(t("work.units_pick", ctx.lang), cb.UNITS_CHOICE.data("pick"))])
    rows.append([(t("work.cancel_button", ctx.lang), cb.WORK_CONFIRM.data("no"))])
    return rows


async def pick_buttons(ctx: Ctx, caller: Caller, data: dict[str, Any]) -> Buttons:
    """Return one page of unit toggles with paging and Done."""
    units = await live_units(ctx.session, caller.campaign.id)
    chosen = set(data.get("chosen") or [])
    pages = max(1, -(-len(units) // PAGE))
    page = min(max(0, int(data.get("page") or 0)), pages - 1)
    shown = units[page * PAGE : (page + 1) * PAGE]
    rows: list[list[tuple[str, str]]] = []
    for i in range(0, len(shown), 2):
        rows.append(
            [
                (
                    str(
                        t(
                            "work.unit_on" if u.id in chosen else "work.unit_off",
                            ctx.lang,
                            unit=u.name,
                        )
                    ),
                    cb.UNITS_TOGGLE.data(u.id),
                )
                for u in shown[i : i + 2]
            ]
        )
    paging: list[tuple[str, str]] = []
    if page > 0:
        paging.append((t("work.units_prev", ctx.lang), cb.UNITS_PAGE.data(page - 1)))
    if page < pages - 1:
        paging.append((t("work.units_next", ctx.lang), cb.UNITS_PAGE.data(page + 1)))
    if paging:
        rows.append(paging)
    rows.append(
        [
            (t("work.units_done", ctx.lang, count=len(chosen)), cb.UNITS_CHOICE.data("done")),
            (t("work.cancel_button", ctx.lang), cb.WORK_CONFIRM.data("no")),
        ]
    )
    return rows


async def unit_ids_of(ctx: Ctx, caller: Caller) -> set[int]:
    """Return the ids of the campaign's live units (to check a pressed toggle)."""
    return {u.id for u in await live_units(ctx.session, caller.campaign.id)}
