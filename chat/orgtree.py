"""The organisation's department tree, loaded once per request: paths, subtrees, ancestors."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from chat.errors import NotFound
from chat.models import Department
from chat.unit import Unit


@dataclass
class DepartmentTree:
    names: dict[int, str] = field(default_factory=dict)
    parent: dict[int, int | None] = field(default_factory=dict)
    children: dict[int, list[int]] = field(default_factory=dict)

    def require(self, department_id: int) -> None:
        if department_id not in self.names:
            raise NotFound("部署が見つかりません。", "No such department.")

    def subtree(self, department_id: int) -> set[int]:
        """The department and every department below it."""
        found, stack = set(), [department_id]
        while stack:
            node = stack.pop()
            if node in found or node not in self.names:
                continue
            found.add(node)
            stack.extend(self.children.get(node, ()))
        return found

    def path(self, department_id: int | None) -> str:
        """``総務部/情報管理課`` (an empty string for no department)."""
        parts: list[str] = []
        node = department_id
        while node is not None and node in self.names and len(parts) < 64:
            parts.append(self.names[node])
            node = self.parent[node]
        return "/".join(reversed(parts))


async def load_tree(uow: Unit, org_id: int) -> DepartmentTree:
    tree = DepartmentTree()
    rows = await uow.session.execute(
        select(Department.id, Department.parent_id, Department.name).where(
            Department.org_id == org_id
        )
    )
    for dept_id, parent_id, name in rows.all():
        tree.names[dept_id] = name
        tree.parent[dept_id] = parent_id
        if parent_id is not None:
            tree.children.setdefault(parent_id, []).append(dept_id)
    return tree
