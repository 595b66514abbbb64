"""A merchant's users from the back office: who has which role, invitations by a one-time
link, a role changed, a user removed; an operator also disables a user. Each act asks the
code again and is audited in its own transaction.

Every query is bounded by the merchants the caller may manage (`Access.merchants(USERS)`),
so a user of another merchant finds nobody here. A merchant always keeps an owner: nobody
removes or demotes its last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import audit, roles
from ..models import Enrolment, Membership, Merchant, User
from . import console_sessions, people, signin
from .merchant_settings import CONFIRM_CODE, Actor, Invalid

OWNER = "owner"


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    role: str
    enrolled: bool
    disabled: bool


@dataclass(frozen=True)
class Invitation:
    email: str
    role: str
    expires_at: datetime


@dataclass(frozen=True)
class Person:
    """A user as an operator sees them: every merchant role at once."""

    user_id: int
    email: str
    operator: bool
    enrolled: bool
    disabled: bool
    roles: list[tuple[int, str]]  # (merchant id, role)


def members(session: Session, merchant_id: int) -> list[Member]:
    rows = session.execute(
        select(User, Membership.role).join(Membership, Membership.user_id == User.id)
        .where(Membership.merchant_id == merchant_id).order_by(User.email)).all()
    return [Member(u.id, u.email, role, u.enrolled_at is not None, u.disabled_at is not None)
            for u, role in rows]


def invitations(session: Session, merchant_id: int, now: datetime) -> list[Invitation]:
    """Links to this merchant not used yet and still good, newest first."""
    rows = session.execute(
        select(Enrolment, User.email).join(User, User.id == Enrolment.user_id)
        .where(Enrolment.merchant_id == merchant_id, Enrolment.used_at.is_(None),
               Enrolment.expires_at > now)
        .order_by(Enrolment.id.desc())).all()
    return [Invitation(email, link.role or "", link.expires_at) for link, email in rows]


def everybody(session: Session) -> list[Person]:
    """Every user of every merchant, for an operator."""
    users = session.scalars(select(User).order_by(User.email)).all()
    held: dict[int, list[tuple[int, str]]] = {}
    for user_id, merchant_id, role in session.execute(
            select(Membership.user_id, Membership.merchant_id, Membership.role)
            .order_by(Membership.merchant_id)).all():
        held.setdefault(user_id, []).append((merchant_id, role))
    return [Person(u.id, u.email, bool(u.operator), u.enrolled_at is not None,
                   u.disabled_at is not None, held.get(u.id, [])) for u in users]


def _confirm(session: Session, actor: Actor, code: str, now: datetime) -> None:
    problem = signin.confirm_code(session, actor.user_id, code.strip(), now=now)
    if problem is not None:
        raise Invalid({CONFIRM_CODE: problem})


def _role(value: str) -> str:
    if value not in roles.ROLES:
        raise Invalid({"role": f"unknown role {value!r}; one of: {', '.join(roles.ROLES)}"})
    return value


def _record(session: Session, action: str, actor: Actor, merchant_id: int | None,
            target: str, **detail: str) -> None:
    audit.record(session, action, actor=actor.email, user_id=actor.user_id,
                 merchant_id=merchant_id, target=target, detail=detail, address=actor.address)


def invite(session: Session, merchant_id: int, email: str, role: str, code: str, *,
           actor: Actor, now: datetime) -> str:
    """A one-time link (its token) inviting `email` to the merchant with `role`: a new
    user enrols through it; an existing one accepts the role with it."""
    errors: dict[str, str] = {}
    try:
        email = people.normalise_email(email)
    except people.PeopleError as exc:
        errors["email"] = str(exc)
    try:
        _role(role)
    except Invalid as exc:
        errors.update(exc.errors)
    if errors:
        raise Invalid(errors)
    if session.get(Merchant, merchant_id) is None:
        raise Invalid({"": f"no merchant with client id {merchant_id}"})
    _confirm(session, actor, code, now)
    user = people.by_email(session, email)
    if user is None:
        user = people.add_user(session, email, now=now, merchant_id=merchant_id, role=role)
        token = people.new_link(session, user, now=now, invited_by=actor.user_id)
    elif session.get(Membership, (user.id, merchant_id)) is not None:
        raise Invalid({"email": f"{email} is a user of this merchant already"})
    elif user.disabled_at is not None or user.enrolled_at is None:
        # A link for someone who has not enrolled would let whoever holds it set their
        # password (and take their roles elsewhere); which of the two it is stays untold.
        raise Invalid({"email": f"{email} cannot be invited now: an operator can help"})
    elif _pending(session, user.id, merchant_id, now):
        raise Invalid({"email": f"{email} has an invitation to this merchant already"})
    else:
        token = people.new_link(session, user, now=now, merchant_id=merchant_id, role=role,
                                invited_by=actor.user_id)
    _record(session, "users.invite", actor, merchant_id, email, role=role)
    return token


def _pending(session: Session, user_id: int, merchant_id: int, now: datetime) -> bool:
    """Whether an unused, unexpired invitation of the user to the merchant exists: a second
    one could, accepted later, undo the role the first gave."""
    return session.scalar(select(Enrolment.id).where(
        Enrolment.user_id == user_id, Enrolment.merchant_id == merchant_id,
        Enrolment.used_at.is_(None), Enrolment.expires_at > now).limit(1)) is not None


def _membership(session: Session, merchant_id: int, user_id: int) -> Membership:
    found = session.get(Membership, (user_id, merchant_id), with_for_update=True)
    if found is None:
        raise LookupError(user_id)
    return found


def _owners(session: Session, merchant_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Membership).where(
        Membership.merchant_id == merchant_id, Membership.role == OWNER)) or 0


def _keep_an_owner(session: Session, membership: Membership) -> None:
    if membership.role == OWNER and _owners(session, membership.merchant_id) <= 1:
        raise Invalid({"": "last owner"})


def change_role(session: Session, merchant_id: int, user_id: int, role: str, code: str, *,
                actor: Actor, now: datetime) -> bool:
    """Whether the role changed. LookupError: not a user of this merchant."""
    _role(role)
    membership = _membership(session, merchant_id, user_id)
    if membership.role == role:
        return False
    if role != OWNER:
        _keep_an_owner(session, membership)
    _confirm(session, actor, code, now)
    before, membership.role = membership.role, role
    email = session.get(User, user_id).email  # type: ignore[union-attr]
    _record(session, "users.role", actor, merchant_id, email, before=before, role=role)
    return True


def remove(session: Session, merchant_id: int, user_id: int, code: str, *, actor: Actor,
           now: datetime) -> None:
    """The user loses their role here (not their other merchants'), and their unused
    invitations to this merchant. LookupError: not a user of this merchant."""
    membership = _membership(session, merchant_id, user_id)
    _keep_an_owner(session, membership)
    _confirm(session, actor, code, now)
    role = membership.role
    session.delete(membership)
    for link in session.scalars(select(Enrolment).where(
            Enrolment.user_id == user_id, Enrolment.merchant_id == merchant_id,
            Enrolment.used_at.is_(None))):
        link.used_at = now  # spent: it can no longer give the role back
    email = session.get(User, user_id).email  # type: ignore[union-attr]
    _record(session, "users.remove", actor, merchant_id, email, role=role)


def disable(session: Session, user_id: int, code: str, *, actor: Actor,
            now: datetime) -> None:
    """An operator's act: the user signs in nowhere from now on; their sessions end."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise LookupError(user_id)
    if user.id == actor.user_id:
        raise Invalid({"": "self"})
    if user.disabled_at is not None:
        return
    _confirm(session, actor, code, now)
    user.disabled_at = now
    for row in console_sessions.of_user(session, user.id, now):
        console_sessions.end(row, now)
    _record(session, "users.disable", actor, None, user.email)
