"""The back office's audit log: append-only, written in the same transaction as the act.

An entry that could be edited would prove nothing, so a session that tries to update or
delete one fails before anything reaches the database.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from .models import AuditEntry

COMMAND_LINE = "command line"


class AppendOnly(RuntimeError):
    """Something tried to change or delete an audit entry."""


def record(session: Session, action: str, *, actor: str, user_id: int | None = None,
           merchant_id: int | None = None, target: str | None = None,
           detail: dict[str, Any] | None = None, address: str | None = None) -> AuditEntry:
    """Add one entry to `session`; it is written when the caller commits its act."""
    entry = AuditEntry(action=action, actor=actor, user_id=user_id, merchant_id=merchant_id,
                       target=target, address=address,
                       detail_json=json.dumps(detail or {}, sort_keys=True, default=str))
    session.add(entry)
    return entry


def detail(entry: AuditEntry) -> dict[str, Any]:
    value = json.loads(entry.detail_json or "{}")
    return value if isinstance(value, dict) else {}


@event.listens_for(Session, "before_flush")
def _refuse_changes(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry) and (obj in session.deleted
                                            or session.is_modified(obj)):
            raise AppendOnly("audit entries are never changed or deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state: ORMExecuteState) -> None:
    """`session.execute(update(AuditEntry))` or `delete(...)` skip the flush: refused here."""
    if (state.is_update or state.is_delete) and any(
            mapper.class_ is AuditEntry for mapper in state.all_mappers):
        raise AppendOnly("audit entries are never changed or deleted")
