"""Who may do what: roles give capabilities; an operator holds every one everywhere."""

from __future__ import annotations

import pytest

from checkout import roles
from checkout.access import Access


def test_every_role_reads_and_only_owners_manage_users() -> None:
    assert all(roles.allows(role, roles.READ) for role in roles.ROLES)
    assert [role for role in roles.ROLES if roles.allows(role, roles.USERS)] == ["owner"]


@pytest.mark.parametrize(("role", "capability", "allowed"), [
    ("admin", roles.SETTINGS, True), ("developer", roles.DEVELOPER, True),
    ("developer", roles.SETTINGS, False), ("support", roles.RESEND, True),
    ("support", roles.EXPORT, False), ("accountant", roles.EXPORT, True),
    ("accountant", roles.RESEND, False), ("viewer", roles.NOTE, False),
    ("nobody", roles.READ, False), (None, roles.READ, False),
])
def test_a_role_gives_its_capabilities(role: str | None, capability: str, allowed: bool) -> None:
    assert roles.allows(role, capability) is allowed


def test_access_is_per_merchant() -> None:
    access = Access(1, "a@x.example", False, {11: "owner", 22: "viewer"})
    assert access.can(roles.USERS, 11) and not access.can(roles.USERS, 22)
    assert not access.can(roles.READ, 33)
    assert access.can(roles.USERS)  # at some merchant
    assert access.merchants(roles.READ) == [11, 22]
    assert access.merchants(roles.EXPORT) == [11]


def test_an_operator_sees_every_merchant() -> None:
    operator = Access(2, "op@x.example", True)
    assert operator.merchants() is None
    assert operator.can(roles.USERS, 99)
