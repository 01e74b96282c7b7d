"""How domain objects look in JSON responses."""

from __future__ import annotations

from typing import Any

from chat.models import Department, User


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "login_id": user.login_id,
        "display_name": user.display_name,
        "kana": user.kana,
        "department_id": user.department_id,
        "title": user.title,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
    }


def department_view(dept: Department) -> dict[str, Any]:
    return {"id": dept.id, "name": dept.name, "parent_id": dept.parent_id, "code": dept.code}
