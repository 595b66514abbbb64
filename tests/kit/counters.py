"""Counting what a test made: rows of a model, in the app's own database."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func, select

from checkout import db


def count(app: Flask, model: type[Any]) -> int:
    """How many rows `model` has now."""
    with app.app_context():
        return int(db.session().scalar(select(func.count()).select_from(model)) or 0)
