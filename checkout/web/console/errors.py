"""The back office's error pages, in its own frame: a person reads them, signed in or not."""

from __future__ import annotations

from flask import request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from .base import PATH, render


def is_console_path(path: str) -> bool:
    return path == PATH or path.startswith(PATH + "/")


def page(exc: HTTPException) -> ResponseReturnValue:
    code = exc.code or 500
    messages = {
        400: (_("This form has expired. Please go back, reload the page and try again.")
              if exc.description == "csrf" else _("This request could not be read.")),
        401: _("Please sign in again."),
        403: _("Your role does not allow this. Ask an owner of the merchant."),
        404: _("There is nothing here, or nothing you may see."),
        405: _("This address does not take that kind of request."),
        413: _("That is more than this form takes."),
    }
    message = messages.get(code, _("Something went wrong on our side. Please try again."))
    answer = render("console/error.html", code=code, message=message)
    response_code = code if code in messages or code >= 500 else 500
    return answer, response_code, {"Cache-Control": "no-store"}


def handles(exc: HTTPException) -> bool:
    return is_console_path(request.path) and (exc.code or 500) != 429
