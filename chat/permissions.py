"""Who may do what: every role check of the app lives here."""

from __future__ import annotations

from chat.auth import Principal
from chat.errors import Forbidden

ROLES = ("admin", "supervisor", "member")


def require_admin(principal: Principal) -> None:
    if principal.user.role != "admin":
        raise Forbidden(
            "この操作は管理者だけが行えます。",
            "Only an administrator may do this.",
        )


def require_same_org(principal: Principal, org_id: int) -> None:
    if principal.org_id != org_id:
        raise Forbidden("この組織の操作はできません。", "This belongs to another organisation.")
