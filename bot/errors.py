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
