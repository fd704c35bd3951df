"""/invite, /people and /revoke in the chat, for the office and admins."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler

from bot.i18n import format_moment, t
from bot.messages import callbacks as cb
from bot.services.access import NotAllowed, campaigns_of
from bot.services.admin import find_roles, list_holders, may_grant, revoke_role
from bot.services.invites import ROLES, UNIT_ROLES, create_invite, invite_link
from handlers.common import Context, Ctx, Reply, button, command, is_group, pressed
from handlers.queries import named_unit


async def invite(ctx: Ctx) -> None:
    """Make an invite: /invite ROLE [UNIT] (office: contact and head; admin: any role)."""
    caller = ctx.need_caller()
    caller.require_office()
    if is_group(ctx.update):
        # A live code posted in a group can be redeemed by any member (issue 14).
        ctx.say(t("invite_private.only", ctx.lang))
        return
    args = ctx.context.args or []
    if not args or args[0] not in ROLES:
        ctx.say(t("admin.invite_usage", ctx.lang))
        return
    role = args[0]
    if not may_grant(caller, role):
        raise NotAllowed("admin")
    unit = None
    if role in UNIT_ROLES:
        if len(args) < 2:
            ctx.say(t("admin.invite_needs_unit", ctx.lang))
            return
        unit = await named_unit(ctx, caller, " ".join(args[1:]))
        if unit is None:
            return
    made = await create_invite(
        ctx.session, caller.campaign, role, unit, now=ctx.now, actor=f"person:{caller.person.id}"
    )
    username = ctx.context.bot.username
    assert made.invite.expires_at is not None
    ctx.say(
        t(
            "admin.invite_made",
            ctx.lang,
            role=t(f"role.{role}", ctx.lang),
            unit=made.unit_name or "—",
            code=made.code,
            link=invite_link(username, made.code),
            expires=format_moment(made.invite.expires_at, caller.campaign.timezone, ctx.lang),
        )
    )


async def people(ctx: Ctx) -> None:
    """List who holds which role (and unreachable people, and units with no contact)."""
    caller = ctx.need_caller()
    caller.require_office()
    text = " ".join(ctx.context.args or []).strip()
    unit_id = None
    if text:
        unit = await named_unit(ctx, caller, text)
        if unit is None:
            return
        unit_id = unit.id
    holders, orphans = await list_holders(ctx.session, caller, unit_id)
    lines: list[str] = [t("admin.people_title", ctx.lang, count=len(holders))]
    for holder in holders:
        lines.append(
            t(
                "admin.people_line",
                ctx.lang,
                name=holder.person.name or str(holder.person.telegram_id),
                role=t(f"role.{holder.role}", ctx.lang),
                unit=holder.unit_name or "",
                reach=t("admin.unreachable", ctx.lang) if not holder.person.reachable else "",
            )
        )
    if orphans:
        lines.append("")
        lines.append(t("admin.orphans", ctx.lang, count=len(orphans)))
        lines.extend(t("admin.orphan_line", ctx.lang, unit=unit.name) for unit in orphans)
    ctx.say("\n".join(lines))


async def revoke(ctx: Ctx) -> None:
    """Offer the roles of the named person for removal: /revoke PERSON."""
    caller = ctx.need_caller()
    caller.require_office()
    text = " ".join(ctx.context.args or []).strip()
    if not text:
        ctx.say(t("admin.revoke_usage", ctx.lang))
        return
    found = [h for h in await find_roles(ctx.session, caller, text) if may_grant(caller, h.role)]
    if not found:
        ctx.say(t("admin.unknown_person", ctx.lang))
        return
    ctx.say(
        t("admin.revoke_pick", ctx.lang),
        [
            [
                (
                    t(
                        "admin.revoke_button",
                        ctx.lang,
                        name=h.person.name or str(h.person.telegram_id),
                        role=t(f"role.{h.role}", ctx.lang),
                        unit=h.unit_name or "",
                    ),
                    cb.REVOKE.data(h.role_id),
                )
            ]
            for h in found[:20]
        ],
    )


async def on_revoke(ctx: Ctx) -> None:
    """Remove the chosen role (rvk:<role id>)."""
    caller = ctx.need_caller()
    holder = await revoke_role(ctx.session, caller, pressed(ctx, cb.REVOKE).id, now=ctx.now)
    ctx.replies.append(
        Reply(
            t(
                "admin.revoked",
                ctx.lang,
                name=holder.person.name or str(holder.person.telegram_id),
                role=t(f"role.{holder.role}", ctx.lang),
            ),
            edit=True,
        )
    )


async def set_language(ctx: Ctx) -> None:
    """Choose the language: /lang zh|en."""
    args = ctx.context.args or []
    if ctx.person is None or not args or args[0] not in ("zh", "en"):
        ctx.say(t("lang.usage", ctx.lang))
        return
    ctx.person.language = args[0]
    ctx.say(t("lang.set", args[0]))


async def switch_campaign(ctx: Ctx) -> None:
    """Switch between campaigns: /campaign [KEY]."""
    caller = ctx.need_caller()
    campaigns = await campaigns_of(ctx.session, caller.person)
    args = ctx.context.args or []
    if args:
        chosen = next((c for c in campaigns if c.key == args[0]), None)
        if chosen is None:
            ctx.say(t("campaign.unknown", ctx.lang))
            return
        caller.person.current_campaign_id = chosen.id
        ctx.say(t("campaign.switched", ctx.lang, title=chosen.title))
        return
    lines: list[str] = [t("campaign.current", ctx.lang, title=caller.campaign.title)]
    lines.extend(t("campaign.line", ctx.lang, key=c.key, title=c.title) for c in campaigns)
    ctx.say("\n".join(lines))


def handlers() -> list[BaseHandler[Update, Context, None]]:
    """Return the housekeeping handlers."""
    return [
        command("invite", invite),
        command("people", people),
        command("revoke", revoke),
        button(on_revoke, cb.REVOKE),
        command("lang", set_language),
        command("campaign", switch_campaign),
    ]
