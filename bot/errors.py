"""Typed errors raised at the domain edge; each maps to one message key."""

from __future__ import annotations

from typing import Any

_ROLE_NAMES = ("contact", "head", "office", "leader", "admin")


class DubanError(Exception):
    """An expected failure that is told to the user as one line."""

    key = "error.generic"

    def __init__(self, detail: str = "", **params: Any) -> None:
        super().__init__(detail or self.key)
        self.detail = detail
        self.params = params


class NoCampaign(DubanError):
    """The database holds no campaign yet."""

    key = "error.no_campaign"


class NoDatabase(DubanError):
    """A command that needs a campaign found no database, or one without any campaign."""

    key = "error.no_database"

    def render(self, lang: str | None) -> str:
        """Name the database looked at, and how to load a plan."""
        from bot.i18n import plain

        state = self.params.get("state", "missing")
        return plain(f"cli.db.{state}", lang, name=self.params.get("name", ""))


class AllArchived(DubanError):
    """Every campaign in the database is archived, and none was named."""

    key = "cli.campaign.all_archived"


class UnknownCampaign(DubanError):
    """No campaign has that key."""

    key = "error.unknown_campaign"


class CampaignAmbiguous(DubanError):
    """Several campaigns exist and none was named."""

    key = "error.campaign_ambiguous"


class UnknownUnit(DubanError):
    """No unit matches the name."""

    key = "error.unknown_unit"


class UnknownTask(DubanError):
    """No task matches the name."""

    key = "error.unknown_task"


class BadRole(DubanError):
    """The role does not exist, or needs (or must not have) a unit."""

    key = "error.bad_role"

    def render(self, lang: str | None) -> str:
        """Return the reason in `lang` (`cli.role.<reason>`), naming the role."""
        from bot.i18n import plain

        reason = self.params.get("reason")
        if reason is None:
            return plain(self.key, lang, detail=self.detail)
        role = str(self.params.get("role", ""))
        shown = plain(f"role.{role}", lang) if role in _ROLE_NAMES else role
        return plain(self.key, lang, detail=plain(f"cli.role.{reason}", lang, role=shown))


class InviteUnknown(DubanError):
    """No invite has that code."""

    key = "invite.unknown"


class InviteExpired(DubanError):
    """The invite's time ran out."""

    key = "invite.expired"


class InviteUsedUp(DubanError):
    """The invite has been used as often as it allows."""

    key = "invite.used_up"


class InviteRevoked(DubanError):
    """The office withdrew the invite."""

    key = "invite.revoked"


class TooManyAttempts(DubanError):
    """Too many wrong codes from one account."""

    key = "invite.too_many"


class StaleButton(DubanError):
    """A button whose data does not (or no longer) match the database."""

    key = "error.stale_button"
