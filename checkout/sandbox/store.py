"""The embedded processor's own tables: nothing here is shared with the site."""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """The sandbox's tables (prefixed sandbox_)."""


class Account(Base):
    """A merchant account at the processor: API key and secret, where callbacks go."""

    __tablename__ = "sandbox_accounts"

    client_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    api_key: Mapped[str] = mapped_column(String(255), unique=True)
    api_secret: Mapped[str] = mapped_column(String(255))
    callback_url: Mapped[str | None] = mapped_column(Text)
