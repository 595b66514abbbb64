"""Back-office sign-ins as rows: started, found again from the cookie's token, ended.

The cookie carries a random token and the table only its digest. A session ends after
IDLE without a request, or ABSOLUTE after it began, whatever happens in between.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import ConsoleSession, User

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
# A request refreshes `last_seen_at` only when it is this old: reading a page writes nothing.
TOUCH_EVERY = timedelta(minutes=1)

HALFWAY = "password"  # the password was right; the second factor is still to come
SIGNED_IN = "signed_in"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(session: Session, user: User, *, now: datetime, stage: str = HALFWAY,
          address: str | None = None, user_agent: str | None = None) -> str:
    """A new session for `user`; returns the token for the cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    session.add(ConsoleSession(token_digest=digest(token), user_id=user.id, stage=stage,
                               address=address, user_agent=(user_agent or "")[:255] or None,
                               created_at=now, last_seen_at=now))
    return token


def live(row: ConsoleSession, now: datetime) -> bool:
    return (row.ended_at is None and now - row.last_seen_at < IDLE
            and now - row.created_at < ABSOLUTE)


def load(session: Session, token: str | None, now: datetime
         ) -> tuple[ConsoleSession, User] | None:
    """The live session `token` names and its enabled user, touched; None otherwise."""
    if not token or len(token) > 128:
        return None
    found = session.execute(select(ConsoleSession, User)
                            .join(User, User.id == ConsoleSession.user_id)
                            .where(ConsoleSession.token_digest == digest(token))).first()
    if found is None:
        return None
    row, user = found[0], found[1]
    if not live(row, now) or user.disabled_at is not None:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return row, user


def end(row: ConsoleSession, now: datetime) -> None:
    if row.ended_at is None:
        row.ended_at = now


def of_user(session: Session, user_id: int, now: datetime) -> list[ConsoleSession]:
    """The user's live sessions, newest first."""
    rows = session.scalars(select(ConsoleSession)
                           .where(ConsoleSession.user_id == user_id,
                                  ConsoleSession.ended_at.is_(None))
                           .order_by(ConsoleSession.id.desc())).all()
    return [row for row in rows if live(row, now)]
