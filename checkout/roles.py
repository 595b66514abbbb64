"""Who may do what in the back office: roles at a merchant, and the capabilities each gives.

One table decides; views name a capability, never a role, so that a new role is one line
here. An operator holds every capability at every merchant.
"""

from __future__ import annotations

from typing import Final

# Capabilities, each a kind of act in the back office.
READ: Final = "read"  # payments, their stories, deliveries, flags, overview
NOTE: Final = "note"  # add a note to a payment
RESEND: Final = "resend"  # resend an event to the shop, ask the processor now
EXPORT: Final = "export"  # CSV of payments and the audit log
DELIVERIES: Final = "deliveries"  # retry, replay many, pause and resume deliveries
DEVELOPER: Final = "developer"  # webhook URL, API secret, frame origins, return hosts
SETTINGS: Final = "settings"  # names, logo, accent, instructions, language
# Open the merchant's settings page: whoever may change any part of it (SETTINGS or DEVELOPER).
CONFIGURE: Final = "configure"
USERS: Final = "users"  # invite, change roles, remove
AUDIT: Final = "audit"  # read the audit log
REFUND: Final = "refund"  # approve or reject refunds: sends the merchant's money back

CAPABILITIES: Final = (READ, NOTE, RESEND, EXPORT, DELIVERIES, DEVELOPER, SETTINGS, CONFIGURE,
                       USERS, AUDIT, REFUND)

ROLES: Final[dict[str, frozenset[str]]] = {
    "owner": frozenset(CAPABILITIES),
    "admin": frozenset({READ, NOTE, RESEND, EXPORT, DELIVERIES, DEVELOPER, SETTINGS, CONFIGURE,
                        AUDIT, REFUND}),
    "developer": frozenset({READ, RESEND, DELIVERIES, DEVELOPER, CONFIGURE}),
    # Neither support nor accountant decides refunds: an approval pays the merchant's money
    # out at once, a decision for whoever answers for the balance. Support talks to the
    # customer and sees each refund's state (READ); the accountant keeps the books and
    # should not also be the one paying out of them (the audit log they read records who
    # did).
    "support": frozenset({READ, NOTE, RESEND}),
    "accountant": frozenset({READ, EXPORT, AUDIT}),
    "viewer": frozenset({READ}),
}


def allows(role: str | None, capability: str) -> bool:
    """Whether `role` gives `capability`; an unknown role gives nothing."""
    return capability in ROLES.get(role or "", frozenset())
