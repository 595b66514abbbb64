"""Customer pages (deposit and invoice): placeholder until the page issue lands."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the customer blueprint."""
