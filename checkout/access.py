"""What one signed-in person may see and do: their roles per merchant, read once per request.

Every back-office query is bounded by `Access.merchants(...)`: a user of merchant A reaches
nothing of merchant B by any route, id, search or export, because B's id is never in the
list a query is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import roles
from .models import Membership, User


@dataclass(frozen=True)
class Access:
    user_id: int
    email: str
    operator: bool
    by_merchant: Mapping[int, str] = field(default_factory=dict)  # merchant id -> role

    def can(self, capability: str, merchant_id: int | None = None) -> bool:
        """At `merchant_id`, or (None) at any merchant at all."""
        if self.operator:
            return True
        if merchant_id is None:
            return any(roles.allows(role, capability) for role in self.by_merchant.values())
        return roles.allows(self.by_merchant.get(merchant_id), capability)

    def merchants(self, capability: str = roles.READ) -> list[int] | None:
        """The merchants where `capability` holds, in id order; None: every merchant."""
        if self.operator:
            return None
        return sorted(m for m, role in self.by_merchant.items()
                      if roles.allows(role, capability))

    def role_at(self, merchant_id: int) -> str | None:
        return "operator" if self.operator else self.by_merchant.get(merchant_id)


def of(session: Session, user: User) -> Access:
    rows = session.execute(select(Membership.merchant_id, Membership.role)
                           .where(Membership.user_id == user.id)).all()
    return Access(user.id, user.email, bool(user.operator), {m: r for m, r in rows})
