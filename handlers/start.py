"""/start (with or without an invite code) and /help."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import CommandHandler

from bot.errors import BadRole, DubanError
from bot.i18n import t
from bot.services import reachability
from bot.services.campaigns import office_for
from bot.services.invites import redeem, too_many_failures
from bot.services.people import active_roles, touch_person
from handlers.common import (
    Context,
    Ctx,
    command,
    is_group,
    language,
    office_name,
    reply,
    runtime,
    topic_of,
    without_nul,
)
from handlers.throttle import throttle_of

log = logging.getLogger("duban")


async def start(update: Update, context: Context) -> None:
    """Redeem an invite code, or greet: strangers learn how to get invited, nothing else."""
    rt = runtime(context)
    update = without_nul(update, context)
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    code = context.args[0] if context.args else None
    group = is_group(update)
    if group and not code:
        return  # in groups the bot stays silent unless registered (SPEC §4.5)
    now = rt.clock()
    text: str
    first_admin = False
    registered = False  # whether the person (or group) holds a role afterwards
    welcome = False  # a code just redeemed: always answered
    throttle = throttle_of(context.application.bot_data)
    if code:
        # An account that used up its wrong codes is refused before the write lock is taken
        # (one row read by key: issue 14 case 5).
        async with rt.db.read() as session:
            refused = await too_many_failures(session, user.id, now=now)
        if refused:
            if throttle.answer_stranger(user.id, chat.id, group=group):
                await reply(update, t("invite.too_many", rt.default_language))
            return
    async with rt.db.write() as session:
        person = await touch_person(
            session,
            chat.id if group else user.id,
            now=now,
            name=(chat.title or "") if group else user.full_name,
            username=None if group else user.username,
            is_group=group,
        )
        if not person.reachable:  # writing /start proves the chat is open again
            await reachability.became_reachable(
                session, person, "wrote", now=now, default_language=rt.default_language
            )
        lang = language(rt, person)
        if code:
            try:
                result = await redeem(
                    session,
                    person,
                    code,
                    now=now,
                    account=user.id,
                    default_language=rt.default_language,
                )
            except BadRole:
                text = t("invite.group_role", lang)
                registered = bool(await active_roles(session, person))
            except DubanError as exc:
                office = await office_for(session, None) or t("office.default", lang)
                text = t(exc.key, lang, office=office)
                registered = bool(await active_roles(session, person))
            else:
                registered = welcome = True
                role = t(f"role.{result.role.role}", lang)
                first_admin = result.first_admin
                if group:
                    # What the group receives as a role goes to the topic it redeemed in.
                    person.thread_id = topic_of(update)
                if result.already:
                    text = t("start.already", lang, role=role)
                elif group:
                    text = t(
                        "start.group_redeemed", lang, campaign=result.campaign.title, role=role
                    )
                elif result.unit_name:
                    text = t(
                        "start.redeemed_unit",
                        lang,
                        campaign=result.campaign.title,
                        unit=result.unit_name,
                        role=role,
                    )
                else:
                    text = t("start.redeemed", lang, campaign=result.campaign.title, role=role)
        else:
            roles = await active_roles(session, person)
            registered = bool(roles)
            if not roles:
                office = await office_for(session, None) or t("office.default", lang)
                text = t("start.stranger", lang, office=office)
            else:
                described = t("start.role_separator", lang).join(
                    t("start.role_of_unit", lang, role=t(f"role.{role.role}", lang), unit=unit)
                    if unit
                    else t(f"role.{role.role}", lang)
                    for role, _, unit in roles
                )
                text = t(
                    "start.welcome_back",
                    lang,
                    name=user.full_name,
                    campaign=roles[-1][1].title,
                    roles=described,
                )
    if first_admin:
        # The operator waits for this moment after `duban invite admin`: say it in the log.
        log.info("first admin registered: %s (Telegram id %s)", user.full_name, user.id)
    if not group:
        throttle.learn(user.id, registered=registered)
    if not (registered or welcome) and not throttle.answer_stranger(user.id, chat.id, group=group):
        return  # a stranger is answered once every few minutes (issue 14)
    await reply(update, text)


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
    return CommandHandler("start", start)


def help_handler() -> CommandHandler[Context, None]:
    """Return the /help handler."""
    return command("help", help_command)
