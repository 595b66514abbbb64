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

from .. import audit
from ..models import ConsoleSession, User

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
# A request refreshes `last_seen_at` only when it is this old: reading a page writes nothing.
TOUCH_EVERY = timedelta(minutes=1)

HALFWAY = "password"  # the password was right; the second factor is still to come
SIGNED_IN = "signed_in"

SESSION_ENDED = "session_ended"  # signed out from the list of sessions


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


# ---------------------------------------------------------------- one's own sessions (sign-in)


def end_own(session: Session, user: User, session_id: int, now: datetime, *,
            address: str | None = None) -> bool:
    """End the user's live session `session_id`: False when it is not one of theirs or has
    ended already (the same answer, so another person's session ids tell nothing)."""
    row = session.get(ConsoleSession, session_id)
    if row is None or row.user_id != user.id or not live(row, now):
        return False
    end(row, now)
    audit.record(session, SESSION_ENDED, actor=user.email, user_id=user.id, address=address,
                 target=str(row.id))
    return True


def end_others(session: Session, user: User, keep_id: int, now: datetime, *,
               address: str | None = None) -> int:
    """End every live session of the user but `keep_id` (this one); how many ended."""
    ended = [row for row in of_user(session, user.id, now) if row.id != keep_id]
    for row in ended:
        end(row, now)
    if ended:
        audit.record(session, SESSION_ENDED, actor=user.email, user_id=user.id,
                     address=address, target=",".join(str(row.id) for row in ended)[:255])
    return len(ended)


def end_all(session: Session, user_id: int, now: datetime) -> int:
    """End every session of the user, live or halfway (a disabled user)."""
    rows = session.scalars(select(ConsoleSession).where(
        ConsoleSession.user_id == user_id, ConsoleSession.ended_at.is_(None))).all()
    for row in rows:
        end(row, now)
    return len(rows)


_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("Chromium/", "Chromium"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))


def browser_of(user_agent: str | None) -> str | None:
    """"Firefox on Linux" from a User-Agent header; None when nothing is recognised (the
    page then shows the header itself)."""
    text = user_agent or ""
    browser = next((name for mark, name in _BROWSERS if mark in text), None)
    system = next((name for mark, name in _SYSTEMS if mark in text), None)
    if browser and system:
        return f"{browser} · {system}"
    return browser or system
