"""/start (with or without an invite code) and /help."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.ext import CommandHandler

from bot.errors import BadRole, DubanError
from bot.i18n import t
from bot.services.campaigns import office_for
from bot.services.invites import redeem, too_many_failures
from bot.services.people import active_roles
from handlers.common import (
    Context,
    Ctx,
    Frame,
    command,
    is_group,
    office_name,
    run_feature,
    topic_of,
)

log = logging.getLogger("duban")


async def _locked_out(
    session: AsyncSession, update: Update, context: Context, now: datetime
) -> str | None:
    """Refuse, before the write lock, an account that used up its wrong invite codes.

    One row read by key (issue 14 case 5): a flood of wrong codes never queues for the lock.
    """
    user = update.effective_user
    if not context.args or user is None:
        return None
    return "invite.too_many" if await too_many_failures(session, user.id, now=now) else None


async def start(ctx: Ctx) -> None:
    """Redeem an invite code, or greet: strangers learn how to get invited, nothing else.

    The acting person is the chat (`Frame.acting_chat`): in a group the group redeems its
    own invite; in a private chat that is the person. A redeemed code is always answered.
    """
    person, lang = ctx.person, ctx.lang
    assert person is not None
    user = ctx.update.effective_user
    assert user is not None
    code = ctx.context.args[0] if ctx.context.args else None
    group = is_group(ctx.update)
    if code:
        try:
            result = await redeem(
                ctx.session,
                person,
                code,
                now=ctx.now,
                account=user.id,
                default_language=ctx.rt.default_language,
            )
        except BadRole:
            ctx.registered = bool(await active_roles(ctx.session, person))
            ctx.say(t("invite.group_role", lang))
            return
        except DubanError as exc:
            # Caught here, not by the frame: the failed attempt is counted (and kept) by
            # `redeem`, which a refusal's rollback would undo.
            office = await office_for(ctx.session, None) or t("office.default", lang)
            ctx.registered = bool(await active_roles(ctx.session, person))
            ctx.say(t(exc.key, lang, office=office))
            return
        ctx.registered = True
        role = t(f"role.{result.role.role}", lang)
        if result.first_admin:
            # The operator waits for this moment after `duban invite admin`: say it in the log.
            log.info("first admin registered: %s (Telegram id %s)", user.full_name, user.id)
        if group:
            # What the group receives as a role goes to the topic it redeemed in.
            person.thread_id = topic_of(ctx.update)
        if result.already:
            ctx.say(t("start.already", lang, role=role))
        elif group:
            ctx.say(t("start.group_redeemed", lang, campaign=result.campaign.title, role=role))
        elif result.unit_name:
            ctx.say(
                t(
                    "start.redeemed_unit",
                    lang,
                    campaign=result.campaign.title,
                    unit=result.unit_name,
                    role=role,
                )
            )
        else:
            ctx.say(t("start.redeemed", lang, campaign=result.campaign.title, role=role))
        return
    roles = await active_roles(ctx.session, person)
    ctx.registered = bool(roles)
    if not roles:
        office = await office_for(ctx.session, None) or t("office.default", lang)
        ctx.say(t("start.stranger", lang, office=office))
        return
    described = t("start.role_separator", lang).join(
        t("start.role_of_unit", lang, role=t(f"role.{role.role}", lang), unit=unit)
        if unit
        else t(f"role.{role.role}", lang)
        for role, _, unit in roles
    )
    ctx.say(
        t(
            "start.welcome_back",
            lang,
            name=user.full_name,
            campaign=roles[-1][1].title,
            roles=described,
        )
    )


START = Frame(acting_chat=True, precheck=_locked_out)


async def _start(update: Update, context: Context) -> None:
    if is_group(update) and not context.args:
        return  # in groups the bot stays silent unless registered (SPEC §4.5)
    await run_feature(update, context, start, frame=START)


async def help_command(ctx: Ctx) -> None:
    """Tell the person what they may do, by role."""
    caller = ctx.caller
    if caller is None:
        ctx.say(t("help.stranger", ctx.lang, office=await office_name(ctx)))
        return
    sections: list[str] = [t("help.everyone", ctx.lang)]
    if caller.unit_ids:
        sections.append(t("help.unit", ctx.lang) + "\n" + t("help.work_unit", ctx.lang))
    if caller.is_office:
        sections.append(t("help.office", ctx.lang) + "\n" + t("help.work_office", ctx.lang))
    if caller.is_leader and not caller.is_office:
        sections.append(t("help.leader", ctx.lang) + "\n" + t("help.work_leader", ctx.lang))
    if caller.is_admin:
        sections.append(t("help.admin", ctx.lang))
    ctx.say("\n\n".join(sections))


def start_handler() -> CommandHandler[Context, None]:
    """Return the /start handler."""
    return CommandHandler("start", _start)


def help_handler() -> CommandHandler[Context, None]:
    """Return the /help handler."""
    return command("help", help_command)
