"""The embedded CoinsPaid sandbox: a processor of its own behind HTTP.

It imports nothing of the site but `checkout.signing` (and the pure `checkout.money`);
only the app factory mounts it.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Mount the sandbox API and register its worker tasks (placeholder until built)."""
