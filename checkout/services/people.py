"""The back office's people: users added (by command or invitation), their one-time links,
their roles at merchants, disabled.

A link is a random token; only its SHA-256 is stored, and it works once, before it expires.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import roles
from ..emails import valid_email
from ..models import Enrolment, Membership, User

LINK_LIFETIME = timedelta(hours=24)


class PeopleError(ValueError):
    """A request about people that cannot be done; the message says why."""


def normalise_email(value: str) -> str:
    email = value.strip().lower()
    if not valid_email(email):
        raise PeopleError(f"not an email address: {value!r}")
    return email


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def add_user(session: Session, email: str, *, now: datetime, operator: bool = False,
             merchant_id: int | None = None, role: str | None = None) -> User:
    """A new, not yet enrolled user: an operator, or a user with `role` at `merchant_id`."""
    email = normalise_email(email)
    if operator == (merchant_id is not None):
        raise PeopleError("a user is either an operator or has a role at a merchant")
    if merchant_id is not None and role not in roles.ROLES:
        raise PeopleError(f"unknown role {role!r}; one of: {', '.join(roles.ROLES)}")
    if by_email(session, email) is not None:
        raise PeopleError(f"a user with the email {email} exists already")
    user = User(email=email, operator=operator, created_at=now)
    session.add(user)
    session.flush()
    if merchant_id is not None and role is not None:
        session.add(Membership(user_id=user.id, merchant_id=merchant_id, role=role,
                               created_at=now))
    return user


def new_link(session: Session, user: User, *, now: datetime, merchant_id: int | None = None,
             role: str | None = None, invited_by: int | None = None) -> str:
    """A one-time link's token for `user` (enrolment, or with `merchant_id` and `role` an
    invitation there); only its digest is kept."""
    token = secrets.token_urlsafe(32)
    session.add(Enrolment(token_digest=token_digest(token), user_id=user.id,
                          merchant_id=merchant_id, role=role, invited_by=invited_by,
                          expires_at=now + LINK_LIFETIME, created_at=now))
    return token


def open_link(session: Session, token: str, now: datetime) -> tuple[Enrolment, User] | None:
    """The unused, unexpired link `token` names and its enabled user; None otherwise."""
    if not token or len(token) > 128:
        return None
    found = session.execute(select(Enrolment, User).join(User, User.id == Enrolment.user_id)
                            .where(Enrolment.token_digest == token_digest(token))).first()
    if found is None:
        return None
    link, user = found[0], found[1]
    if link.used_at is not None or link.expires_at <= now or user.disabled_at is not None:
        return None
    return link, user
