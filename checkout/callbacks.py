"""Processor callbacks in: placeholder until the callbacks issue lands."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the processor-callback blueprint."""
