"""What passes for an email address: one rule for the customer's form and the shop's API."""

from __future__ import annotations


def valid_email(value: str) -> bool:
    """A plausible address: one @, a dot in the domain, no spaces or controls."""
    local, at, domain = value.partition("@")
    return (bool(at) and 0 < len(local) <= 64 and "." in domain.strip(".")
            and len(value) <= 254 and "@" not in domain
            and not any(c.isspace() or ord(c) < 32 for c in value))
