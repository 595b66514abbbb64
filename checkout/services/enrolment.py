"""Enrolment by a one-time link: a password (twice), then the TOTP factor confirmed with a
code, then ten recovery codes shown once; or, for someone enrolled already, an invitation
accepted by signing in on the link's page. Either way the link is used once and its holder
leaves signed in.

Until the code confirms the factor, the user is not enrolled (`enrolled_at` is empty) and no
sign-in accepts them: a half-done enrolment is only reachable through its link again.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from .. import audit, passwords, qr, totp
from ..models import Enrolment, Membership, Merchant, RecoveryCode, User
from . import console_sessions, people, signin, signin_throttle

# The steps of a link's page.
PASSWORD = "password"  # noqa: S105 (a step's name)
FACTOR = "factor"
INVITATION = "invitation"  # an enrolled user's invitation to a merchant

# Why a password is refused.
TOO_SHORT = "too short"
TOO_LONG = "too long"
NOT_THE_SAME = "not the same"

ENROLLED = "enrolled"
INVITATION_ACCEPTED = "invitation_accepted"


@dataclass(frozen=True)
class Done:
    """A used link: the new session's token, and the recovery codes to show once (none when
    an invitation was accepted)."""

    token: str
    recovery_codes: tuple[str, ...] = ()


def open_link(session: Session, token: str, now: datetime) -> tuple[Enrolment, User] | None:
    found = people.open_link(session, token, now)
    if found is not None and found[0].merchant_id is not None and found[1].enrolled_at is None:
        # An invitation is for someone enrolled (they accept it with their password and
        # code); for anyone else it would hand their account to whoever holds the link.
        return None
    return found


def step(user: User) -> str:
    if user.enrolled_at is not None:
        return INVITATION
    if user.password_hash is None or user.totp_secret is None:
        return PASSWORD
    return FACTOR


def password_problem(password: str, again: str) -> str | None:
    if len(password) < passwords.MINIMUM_LENGTH:
        return TOO_SHORT
    if len(password) > passwords.MAXIMUM_LENGTH:
        return TOO_LONG
    if password != again:
        return NOT_THE_SAME
    return None


def set_password(session: Session, user: User, password: str, again: str) -> str | None:
    """Keep the password and draw a new TOTP secret for the next step; the problem with the
    password otherwise. Only before enrolment ends."""
    problem = password_problem(password, again)
    if problem is not None or user.enrolled_at is not None:
        return problem or INVITATION
    user.password_hash = passwords.hash_password(password)
    user.totp_secret = totp.new_secret()
    user.totp_last_step = None
    return None


def factor(user: User) -> tuple[str, str]:
    """The QR of the authenticator's provisioning URI (a data: URI, drawn here and kept
    nowhere) and the secret as text to type."""
    assert user.totp_secret is not None
    drawing = qr.secret_svg(totp.provisioning_uri(user.totp_secret, user.email), totp.ISSUER)
    return ("data:image/svg+xml;base64," + base64.b64encode(drawing).decode(),
            totp.grouped(user.totp_secret))


def invited_to(session: Session, link: Enrolment) -> tuple[str, str] | None:
    """The merchant's name and the role the link gives there; None for a plain enrolment."""
    if link.merchant_id is None or link.role is None:
        return None
    merchant = session.get(Merchant, link.merchant_id)
    return (merchant.name if merchant else str(link.merchant_id)), link.role


def confirm_factor(session: Session, link: Enrolment, user: User, code: str, *,
                   now: datetime, address: str | None = None,
                   user_agent: str | None = None) -> Done | None:
    """The code proves the app holds the secret: the user is enrolled, the link used, the
    invitation's role given, recovery codes made, and a signed-in session begun."""
    if step(user) != FACTOR or user.totp_secret is None:
        return None
    accepted = totp.accepted_step(user.totp_secret, code, now, user.totp_last_step)
    if accepted is None or not _use(session, link, now):
        return None
    user.totp_last_step = accepted
    user.enrolled_at = now
    codes = totp.new_recovery_codes()
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.add_all(RecoveryCode(user_id=user.id, code_digest=totp.recovery_digest(code))
                    for code in codes)
    _join(session, link, user, now)
    audit.record(session, ENROLLED, actor=user.email, user_id=user.id,
                 merchant_id=link.merchant_id, address=address,
                 detail={"role": link.role} if link.role else None)
    return Done(_signed_in(session, user, now, address, user_agent), tuple(codes))


def accept_invitation(session: Session, link: Enrolment, user: User, password: str,
                      code: str, *, now: datetime, address: str | None = None,
                      user_agent: str | None = None) -> Done | signin.Attempt:
    """An enrolled user signs in on the link's page (password and code, throttled as any
    sign-in): the invitation's role is theirs and they are signed in."""
    names = signin_throttle.keys(user.email, address)
    wait = signin_throttle.blocked_for(session, names, now)
    if wait is not None:
        return signin.Attempt(wait=wait)
    right = (passwords.verify(user.password_hash, password[:passwords.MAXIMUM_LENGTH])
             and signin.check_factor(session, user, code, now=now) is not None)
    if step(user) != INVITATION or not right or not _use(session, link, now):
        signin.failure(session, user, names, now=now, address=address, step="invitation")
        return signin.Attempt()
    signin_throttle.succeeded(session, names[0], now)
    _join(session, link, user, now)
    audit.record(session, INVITATION_ACCEPTED, actor=user.email, user_id=user.id,
                 merchant_id=link.merchant_id, address=address, detail={"role": link.role})
    return Done(_signed_in(session, user, now, address, user_agent))


def _use(session: Session, link: Enrolment, now: datetime) -> bool:
    """Mark the link used: True for the one request that does (two racing requests with the
    same link: the update decides)."""
    done = session.execute(update(Enrolment)
                           .where(Enrolment.id == link.id, Enrolment.used_at.is_(None))
                           .values(used_at=now).execution_options(synchronize_session=False))
    return bool(getattr(done, "rowcount", 0) == 1)


def _join(session: Session, link: Enrolment, user: User, now: datetime) -> None:
    """The invitation's role at its merchant, unless the user has one there already."""
    if link.merchant_id is None or link.role is None:
        return
    # A role held already stays: roles change through the users page, which keeps an owner.
    if session.get(Membership, (user.id, link.merchant_id)) is None:
        session.add(Membership(user_id=user.id, merchant_id=link.merchant_id,
                               role=link.role, created_at=now))


def _signed_in(session: Session, user: User, now: datetime, address: str | None,
               user_agent: str | None) -> str:
    audit.record(session, signin.SIGNIN, actor=user.email, user_id=user.id, address=address,
                 detail={"factor": "enrolment link"})
    return console_sessions.start(session, user, now=now, stage=console_sessions.SIGNED_IN,
                                  address=address, user_agent=user_agent)
