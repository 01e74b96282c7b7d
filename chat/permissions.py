"""Who may do what: every role check of the app lives here."""

from __future__ import annotations

from chat.auth import Principal
from chat.errors import Forbidden
from chat.orgtree import DepartmentTree

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


def require_supervisor_scope(
    principal: Principal, tree: DepartmentTree, department_id: int | None = None
) -> set[int] | None:
    """The departments the caller may oversee, narrowed to ``department_id`` when given:
    ``None`` means every department (an administrator); a supervisor (課長・班長) oversees
    their own department and those below it, and nothing else."""
    role = principal.user.role
    if role == "admin":
        if department_id is None:
            return None
        tree.require(department_id)
        return tree.subtree(department_id)
    own = principal.user.department_id
    if role != "supervisor" or own is None:
        raise Forbidden(
            "この操作は管理者または所属長(課長・班長)だけが行えます。",
            "Only an administrator or a supervisor may do this.",
        )
    scope = tree.subtree(own)
    if department_id is None:
        return scope
    if department_id not in scope:
        raise Forbidden(
            "ご自身の所属とその配下の部署についてだけ操作できます。",
            "A supervisor may act only on their own department and the ones below it.",
            code="outside_department",
            details={"department_id": department_id},
        )
    return tree.subtree(department_id)


def require_decider(principal: Principal, tree: DepartmentTree, department_id: int | None) -> None:
    """Who decides a request (a release or an outbound transfer) from ``department_id``: an
    administrator, or a supervisor of that department or of one above it."""
    if principal.user.role == "admin":
        return
    if department_id is None:
        if principal.user.role == "supervisor":
            raise Forbidden(
                "所属のない利用者の申請は管理者が承認します。",
                "Requests of people without a department are decided by an administrator.",
                code="outside_department",
            )
        require_supervisor_scope(principal, tree)  # a member: forbidden
        return
    require_supervisor_scope(principal, tree, department_id)
