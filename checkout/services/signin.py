"""The two steps of a back-office sign-in: the password, then the second factor (a TOTP code
or a one-time recovery code). Both steps are throttled (signin_throttle) and audited.

Whatever the email, the answer and the work are the same: an unknown email is counted,
blocked and verified (against a dummy hash) exactly as a wrong password is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import audit, passwords, totp
from ..models import ConsoleSession, RecoveryCode, User
from . import console_sessions, signin_throttle

SIGNIN = "signin"
SIGNIN_FAILED = "signin_failed"
SIGNOUT = "signout"
SIGNIN_BLOCKED = "signin_blocked"
UNKNOWN_ACTOR = "unknown email"


@dataclass(frozen=True)
class Attempt:
    """What a step gave: a session token (the password step), `ok` (the code step), or the
    wait of a block in force (no work was done)."""

    ok: bool = False
    token: str | None = None
    wait: timedelta | None = None


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def with_password(session: Session, email: str, password: str, *, now: datetime,
                  address: str | None = None, user_agent: str | None = None) -> Attempt:
    """A session at the "password" stage when the password is right; the same work either
    way; nothing at all while the address or the email is blocked."""
    names = signin_throttle.keys(email, address)
    wait = signin_throttle.blocked_for(session, names, now)
    if wait is not None:
        return Attempt(wait=wait)
    user = find_user(session, email) if len(email) <= 255 else None
    usable = user is not None and user.disabled_at is None and user.enrolled_at is not None
    stored = user.password_hash if usable and user is not None else None
    if not passwords.verify(stored, password[:passwords.MAXIMUM_LENGTH]) or user is None:
        failure(session, user, names, now=now, address=address, step="password")
        return Attempt()
    return Attempt(ok=True, token=console_sessions.start(
        session, user, now=now, address=address, user_agent=user_agent))


def second_factor(session: Session, row: ConsoleSession, code: str, *, now: datetime,
                  address: str | None = None) -> Attempt:
    """Accept the TOTP code (each once) or an unused recovery code for `row`'s user; the
    session is then signed in. Failures count against the account and the address."""
    user = session.get(User, row.user_id, with_for_update=True)
    if user is None or user.disabled_at is not None:
        return Attempt()
    names = signin_throttle.keys(user.email, address)
    wait = signin_throttle.blocked_for(session, names, now)
    if wait is not None:
        return Attempt(wait=wait)
    factor = check_factor(session, user, code, now=now)
    if factor is None:
        failure(session, user, names, now=now, address=address, step="code")
        return Attempt()
    signin_throttle.succeeded(session, names[0], now)
    row.stage = console_sessions.SIGNED_IN
    row.last_seen_at = now
    audit.record(session, SIGNIN, actor=user.email, user_id=user.id, address=address,
                 detail={"factor": factor})
    return Attempt(ok=True)


def failure(session: Session, user: User | None, names: tuple[str, str], *, now: datetime,
            address: str | None, step: str) -> None:
    """Count a failed step and audit it; a block it starts is audited once (the attempts
    it then turns away write nothing, so a flood cannot fill the log)."""
    actor = user.email if user else UNKNOWN_ACTOR
    user_id = user.id if user else None
    blocked = signin_throttle.failed(session, names, now)
    audit.record(session, SIGNIN_FAILED, actor=actor, user_id=user_id, address=address,
                 detail={"step": step})
    if blocked:
        audit.record(session, SIGNIN_BLOCKED, actor=actor, user_id=user_id, address=address,
                     detail={kind: int(wait.total_seconds()) for kind, wait in blocked.items()})


def check_factor(session: Session, user: User, code: str, *, now: datetime) -> str | None:
    """"totp" or "recovery code" when `code` is one of the user's, used up; None otherwise."""
    if user.totp_secret is None:
        return None
    step = totp.accepted_step(user.totp_secret, code, now, user.totp_last_step)
    if step is not None:
        user.totp_last_step = step
        return "totp"
    if use_recovery_code(session, user.id, code, now=now):
        return "recovery code"
    return None


def use_recovery_code(session: Session, user_id: int, code: str, *, now: datetime) -> bool:
    """Mark the user's unused recovery code `code` used: True once, False ever after (the
    update itself decides between two requests racing with the same code)."""
    if not 10 <= len(code.strip()) <= 16:
        return False
    found = session.scalar(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None),
        RecoveryCode.code_digest == totp.recovery_digest(code.strip())))
    if found is None:
        return False
    done = session.execute(update(RecoveryCode)
                           .where(RecoveryCode.id == found, RecoveryCode.used_at.is_(None))
                           .values(used_at=now))
    return bool(getattr(done, "rowcount", 0) == 1)


def recovery_codes_left(session: Session, user_id: int) -> int:
    return session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))) or 0


def sign_out(session: Session, row: ConsoleSession, *, now: datetime,
             address: str | None = None) -> None:
    user = session.get(User, row.user_id)
    if row.ended_at is None and user is not None:
        audit.record(session, SIGNOUT, actor=user.email, user_id=user.id, address=address)
    console_sessions.end(row, now)


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


WRONG_CODE = "code"
TOO_MANY_CODES = "blocked"


def confirm_key(user_id: int) -> str:
    return f"{signin_throttle.CONFIRM}:{user_id}"


def confirm_code(session: Session, user_id: int, code: str, *, now: datetime) -> str | None:
    """The code asked again before a sensitive change (webhook URL, return hosts, frame
    origins, the API secret, users and roles): None when it is right now and never used
    before; else why not (WRONG_CODE, TOO_MANY_CODES).

    Wrong codes count against the user as failed sign-ins do: past a few, none is checked
    for a while, so a stolen session cannot guess its way to a change. A wrong code's count
    is committed at once (the change it guarded is refused and rolled back after it): call
    this before the transaction changes anything."""
    key = confirm_key(user_id)
    if signin_throttle.blocked_for(session, [key], now) is not None:
        return TOO_MANY_CODES
    user = session.get(User, user_id, with_for_update=True)
    step = None
    if user is not None and user.totp_secret is not None and user.disabled_at is None:
        step = totp.accepted_step(user.totp_secret, code, now, user.totp_last_step)
    if user is None or step is None:
        signin_throttle.failed(session, [key], now)
        session.commit()
        return WRONG_CODE
    user.totp_last_step = step
    signin_throttle.succeeded(session, key, now)
    return None
