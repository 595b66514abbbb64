"""The back office (/console/): merchants' users and operators, behind a sign-in with a
second factor. One blueprint; each module adds the views of one part of it."""

from __future__ import annotations

from flask import Flask

from . import base, overview, payments, signin


def init_app(app: Flask) -> None:
    assert overview and payments and signin  # their views are registered on `base.bp` as they load
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        # Back-office forms carry base.csrf_token(), checked for every POST by base's gate,
        # bound to the sign-in cookie; the app-wide session-bound check stands aside.
        csrf.exempt(base.bp)
    app.register_blueprint(base.bp)
