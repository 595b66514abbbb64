"""The back office's front page."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from ... import roles
from .base import bp, render, requires, signed


@bp.route("/")
@requires(roles.READ)
def overview() -> ResponseReturnValue:
    who = signed()
    return render("console/overview.html", access=who.access)
