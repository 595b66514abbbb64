"""The back office (/console/): merchants' users and operators, behind a sign-in with a
second factor. One blueprint; each module adds the views of one part of it."""

from __future__ import annotations

from flask import Flask

from . import (
    audit_log,
    base,
    deliveries,
    enrol,
    overview,
    payments,
    refunds,
    sessions,
    settings,
    signin,
    story,
    users,
)


def init_app(app: Flask) -> None:
    # Their views are registered on `base.bp` as they load.
    assert audit_log and deliveries and enrol and overview and sessions and settings
    assert payments and refunds and signin and story and users
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        # Back-office forms carry base.csrf_token(), checked for every POST by base's gate,
        # bound to the sign-in cookie; the app-wide session-bound check stands aside.
        csrf.exempt(base.bp)
    app.register_blueprint(base.bp)
