"""Settings from the environment, one prefix (CHECKOUT_), refused when unsafe."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "CHECKOUT_"


class ConfigError(RuntimeError):
    """The environment cannot run the site safely."""


def _secret_key(instance: Path, sandbox: bool) -> str:
    key = os.environ.get(f"{PREFIX}SECRET_KEY")
    if key:
        return key
    if not sandbox:
        raise ConfigError("CHECKOUT_SECRET_KEY is required outside sandbox mode")
    # A random key per install: kept in instance/ so that restarts and several
    # processes (site, worker) agree on it.
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        _create_once(path, secrets.token_hex(32))
    return path.read_text().strip()


def _create_once(path: Path, content: str) -> None:
    """Write `path` unless it exists, atomically: processes starting at once (gunicorn's
    workers, the worker) must all read one whole key, never a half-written file, and a
    late creator must not replace the key another process already uses."""
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(content)
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(draft, path)
    finally:
        os.unlink(draft)


def _trusted_proxies() -> int:
    raw = os.environ.get(f"{PREFIX}TRUSTED_PROXIES", "0").strip() or "0"
    if not raw.isascii() or not raw.isdigit() or int(raw) > 10:
        raise ConfigError("CHECKOUT_TRUSTED_PROXIES must be a number of proxy hops (0 to 10)")
    return int(raw)


def _trusted_hosts(public_url: str | None) -> list[str] | None:
    """Host names the site answers to; None: any. The public URL's host always counts, so
    that the site (and its embedded sandbox) can reach itself there."""
    raw = os.environ.get(f"{PREFIX}TRUSTED_HOSTS", "")
    hosts = [host.strip().lower() for host in raw.split(",") if host.strip()]
    if not hosts:
        return None
    if public_url:
        own = urlsplit(public_url).hostname
        if own and own not in hosts:
            hosts.append(own)
    return hosts


def from_environment(instance: Path) -> dict[str, Any]:
    """Read every setting; sandbox mode is on unless a processor URL is given."""
    processor_url = os.environ.get(f"{PREFIX}PROCESSOR_URL", "").rstrip("/")
    sandbox = not processor_url
    instance.mkdir(parents=True, exist_ok=True)
    public_url = os.environ.get(f"{PREFIX}PUBLIC_URL", "").rstrip("/") or None
    return {
        "SANDBOX": sandbox,
        "PROCESSOR_URL": processor_url or None,
        "PUBLIC_URL": public_url,
        # smtp://user:password@host:port/?from=... (smtps:// for TLS from the start,
        # smtp+starttls://): back-office invitations are emailed; unset, they are shown.
        "SMTP_URL": os.environ.get(f"{PREFIX}SMTP_URL") or None,
        "DATABASE_URL": os.environ.get(f"{PREFIX}DATABASE_URL")
        or f"sqlite:///{instance / 'checkout.db'}",
        "SECRET_KEY": _secret_key(instance, sandbox),
        # Database connections each process keeps (and as many more at a peak): at least
        # the threads it serves with, or each request beyond them opens a connection anew.
        "DATABASE_POOL_SIZE": int(os.environ.get(f"{PREFIX}DATABASE_POOL_SIZE", "16")),
        # Seconds; every processor call has a timeout, never an unbounded wait.
        "PROCESSOR_TIMEOUT": float(os.environ.get(f"{PREFIX}PROCESSOR_TIMEOUT", "10")),
        # Seconds a waiting page goes without news before the worker asks the processor.
        "RECONCILE_AFTER": int(os.environ.get(f"{PREFIX}RECONCILE_AFTER", "600")),
        # Past this age (seconds) a page is left to the callbacks alone: the processor
        # retries its own callbacks for about a day, so two days of asking covers a lost one.
        "RECONCILE_HORIZON": int(os.environ.get(f"{PREFIX}RECONCILE_HORIZON", str(2 * 24 * 3600))),
        "RATES_MAX_AGE": int(os.environ.get(f"{PREFIX}RATES_MAX_AGE", "60")),
        # Seconds the cached minimum deposits (currencies/list) serve before the worker
        # fetches them again; they change rarely.
        "LIMITS_MAX_AGE": int(os.environ.get(f"{PREFIX}LIMITS_MAX_AGE", "3600")),
        # Forwarding callbacks to merchants: per-request timeout, how long a worker holds a
        # claimed delivery (never under twice the timeout), retries before giving up.
        "DELIVERY_TIMEOUT": float(os.environ.get(f"{PREFIX}DELIVERY_TIMEOUT", "10")),
        "DELIVERY_LEASE": float(os.environ.get(f"{PREFIX}DELIVERY_LEASE", "60")),
        "DELIVERY_MAX_RETRIES": int(os.environ.get(f"{PREFIX}DELIVERY_MAX_RETRIES", "12")),
        # Deployment behind a load balancer: how many proxies in front of us append to
        # X-Forwarded-For/-Proto/-Host/-Port (0: those headers are ignored, anyone can send
        # them), and which Host names we answer (Flask's TRUSTED_HOSTS; others get 400).
        "TRUSTED_PROXIES": _trusted_proxies(),
        "TRUSTED_HOSTS": _trusted_hosts(public_url),
        # Renderings of customer pages each process keeps (web/pagecache.py), about 10 KB each.
        "PAGE_CACHE_SIZE": int(os.environ.get(f"{PREFIX}PAGE_CACHE_SIZE", "1024")),
        "WTF_CSRF_ENABLED": True,
        "JSON_SORT_KEYS": False,
    }
