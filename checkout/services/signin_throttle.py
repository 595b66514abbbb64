"""Failed sign-ins counted per client address and per account, with exponential backoff.

The account key is the digest of the email as typed (lower-cased), whether or not an account
has it: a blocked unknown email and a blocked known one answer alike, so the block tells
nothing about who has an account. A few failures are free (people mistype); from then on
each failure doubles the wait, up to LONGEST. A quiet day forgets the count.

Both keys are checked before any password is verified: a blocked attempt costs nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import db
from ..models import SigninThrottle

ADDRESS = "address"
ACCOUNT = "account"
CONFIRM = "confirm"  # the code asked again before a sensitive change, per user
# Failures allowed before the first wait: an office behind one address gets more.
FREE = {ADDRESS: 20, ACCOUNT: 5, CONFIRM: 5}
FIRST_WAIT = timedelta(seconds=30)
LONGEST = timedelta(minutes=15)
FORGET = timedelta(hours=24)


def account_key(email: str) -> str:
    typed = email.strip().lower()
    return f"{ACCOUNT}:{hashlib.sha256(typed.encode('utf-8', 'surrogatepass')).hexdigest()}"


def address_key(address: str | None) -> str:
    """An IPv6 client counts by its /64: one host is given a whole /64 to rotate through."""
    text = (address or "").strip()
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return f"{ADDRESS}:{text[:64]}"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return f"{ADDRESS}:{parsed.ipv4_mapped}"
        return f"{ADDRESS}:{ipaddress.ip_network(f'{parsed}/64', strict=False)}"
    return f"{ADDRESS}:{parsed}"


def keys(email: str, address: str | None) -> tuple[str, str]:
    return account_key(email), address_key(address)


def wait_after(failures: int, free: int) -> timedelta | None:
    """How long a key with `failures` is blocked: none while free, then doubling."""
    excess = failures - free
    if excess < 0:
        return None
    return min(LONGEST, FIRST_WAIT * 2 ** min(excess, 16))


def blocked_for(session: Session, names: Iterable[str], now: datetime) -> timedelta | None:
    """The longest wait still in force over `names`; None when none is blocked."""
    rows = session.scalars(select(SigninThrottle).where(
        SigninThrottle.key.in_(list(names)), SigninThrottle.blocked_until > now)).all()
    if not rows:
        return None
    return max(row.blocked_until - now for row in rows if row.blocked_until is not None)


def failed(session: Session, names: Iterable[str], now: datetime) -> dict[str, timedelta]:
    """Count one failure on each key, blocking those past their free failures; the kinds
    ("address", "account") this failure blocked, and for how long."""
    blocked = {}
    for name in names:
        row = _locked_row(session, name, now)
        if now - row.updated_at > FORGET:
            row.failures = 0
        row.failures += 1
        row.updated_at = now
        kind = name.partition(":")[0]
        wait = wait_after(row.failures, FREE[kind])
        row.blocked_until = now + wait if wait is not None else None
        if wait is not None:
            blocked[kind] = wait
    return blocked


def succeeded(session: Session, name: str, now: datetime) -> None:
    """The account's owner got in: its count starts again. The address keeps its own, so
    that one good account does not clear an address that tries many others."""
    row = session.get(SigninThrottle, name, with_for_update=True)
    if row is not None:
        row.failures = 0
        row.blocked_until = None
        row.updated_at = now


def _locked_row(session: Session, name: str, now: datetime) -> SigninThrottle:
    """The key's row, created if missing; concurrent first failures meet the unique key."""
    session.execute(db.conflict_insert(session.get_bind().dialect.name, SigninThrottle)
                    .values(key=name, failures=0, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["key"]))
    row = session.get(SigninThrottle, name, with_for_update=True, populate_existing=True)
    assert row is not None  # inserted above or by a concurrent writer
    return row
