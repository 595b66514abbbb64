"""The `user` commands' workflows: add a user with a one-time enrolment link, list them,
disable one (their sessions end with it). Audited as the command line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..models import Membership, Merchant, User
from . import console_sessions, people

USER_ADDED = "user_added"
USER_DISABLED = "user_disabled"


@dataclass(frozen=True)
class Listed:
    email: str
    operator: bool
    roles: dict[int, str]  # merchant client_id -> role
    enrolled_at: datetime | None
    disabled_at: datetime | None


def add(session: Session, email: str, *, now: datetime, operator: bool = False,
        client_id: int | None = None, role: str | None = None) -> str:
    """A new user and the token of their enrolment link (24 h, once)."""
    if client_id is not None and session.get(Merchant, client_id) is None:
        raise people.PeopleError(f"no merchant with client_id {client_id}")
    user = people.add_user(session, email, now=now, operator=operator, merchant_id=client_id,
                           role=role)
    token = people.new_link(session, user, now=now)
    audit.record(session, USER_ADDED, actor=audit.COMMAND_LINE, user_id=None,
                 merchant_id=client_id, target=user.email,
                 detail={"operator": True} if operator else {"role": role})
    return token


def listing(session: Session) -> list[Listed]:
    users = session.scalars(select(User).order_by(User.email)).all()
    roles: dict[int, dict[int, str]] = {}
    for user_id, merchant_id, role in session.execute(
            select(Membership.user_id, Membership.merchant_id, Membership.role)
            .order_by(Membership.merchant_id)):
        roles.setdefault(user_id, {})[merchant_id] = role
    return [Listed(user.email, bool(user.operator), roles.get(user.id, {}), user.enrolled_at,
                   user.disabled_at) for user in users]


def disable(session: Session, email: str, *, now: datetime) -> int:
    """Disable the user with `email` and end their sessions; how many sessions ended."""
    user = people.by_email(session, email)
    if user is None:
        raise people.PeopleError(f"no user with the email {email.strip().lower()}")
    if user.disabled_at is None:
        user.disabled_at = now
    ended = console_sessions.end_all(session, user.id, now)
    audit.record(session, USER_DISABLED, actor=audit.COMMAND_LINE, target=user.email,
                 detail={"sessions_ended": ended})
    return ended
