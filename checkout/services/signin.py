"""The two steps of a back-office sign-in: the password, then the second factor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import passwords, totp
from ..models import ConsoleSession, User
from . import console_sessions


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def with_password(session: Session, email: str, password: str, *, now: datetime,
                  address: str | None = None, user_agent: str | None = None) -> str | None:
    """A session token at the "password" stage, or None; the same work either way."""
    user = find_user(session, email) if len(email) <= 255 else None
    usable = user is not None and user.disabled_at is None and user.enrolled_at is not None
    stored = user.password_hash if usable and user is not None else None
    if not passwords.verify(stored, password[:passwords.MAXIMUM_LENGTH]) or user is None:
        return None
    return console_sessions.start(session, user, now=now, address=address,
                                  user_agent=user_agent)


def second_factor(session: Session, row: ConsoleSession, code: str, *, now: datetime) -> bool:
    """Accept the TOTP code for `row`'s user (each code once); the session is then signed in."""
    user = session.get(User, row.user_id, with_for_update=True)
    if user is None or user.totp_secret is None or user.disabled_at is not None:
        return False
    step = totp.accepted_step(user.totp_secret, code, now, user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    row.stage = console_sessions.SIGNED_IN
    row.last_seen_at = now
    return True


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def confirm_code(session: Session, user_id: int, code: str, *, now: datetime) -> bool:
    """The code asked again before a sensitive change (webhook URL, return hosts, frame
    origins, the API secret, users and roles): right now, and never used before."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None or user.totp_secret is None or user.disabled_at is not None:
        return False
    step = totp.accepted_step(user.totp_secret, code, now, user.totp_last_step)
    if step is None:
        return False
    user.totp_last_step = step
    return True
