"""Merchants: validation of their settings, lookups, and the `merchant` CLI."""

from __future__ import annotations

import ipaddress
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask, current_app, has_app_context
from flask.cli import AppGroup
from flask_babel import lazy_gettext
from sqlalchemy import event, select
from sqlalchemy.orm import Session, make_transient_to_detached

from . import branding, currencies, db, i18n, policies
from .models import Merchant, MerchantLogo, MerchantsVersion

_HOST = re.compile(r"\A(?=.{1,253}(?::|\Z))[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                   r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::[0-9]{1,5})?\Z")
_FORBIDDEN_IN_ORIGIN = set("*; \t\r\n,'\"")


class MerchantError(ValueError):
    """A merchant setting that cannot be accepted, with a message for the operator.

    The message may be lazy: `str()` reads it in the language of the moment, English in the
    command (no request), the person's own on a back-office page; `message` keeps it lazy
    for a page to render late."""

    def __init__(self, message: branding.Message) -> None:
        super().__init__(message)
        self.message = message


def normalise_return_host(value: str) -> str:
    """`shop.example` or `shop.example:8443`; a scheme, path or wildcard is refused."""
    host = value.strip().lower()
    if "/" in host or "?" in host or "#" in host:
        raise MerchantError(lazy_gettext(
            "return host %(value)s must be a host name only, without scheme or path "
            "(for example shop.example)", value=repr(value)))
    if not _HOST.match(host):
        raise MerchantError(lazy_gettext("return host %(value)s is not a valid host name",
                                         value=repr(value)))
    return host


def normalise_frame_origin(value: str) -> str:
    """`https://shop.example[:port]`: exactly one origin, safe inside a CSP header."""
    origin = value.strip()
    if not origin or set(origin) & _FORBIDDEN_IN_ORIGIN:
        raise MerchantError(lazy_gettext(
            "frame origin %(value)s must be a single origin without '*', ';', ',', quotes "
            "or spaces (for example https://shop.example)", value=repr(value)))
    parts = urlsplit(origin.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MerchantError(lazy_gettext(
            "frame origin %(value)s must start with https:// or http://",
            value=repr(value)))
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise MerchantError(lazy_gettext(
            "frame origin %(value)s must not have a path, query or user",
            value=repr(value)))
    host = parts.netloc.lower()
    if not _HOST.match(host):
        raise MerchantError(lazy_gettext(
            "frame origin %(value)s has an invalid host", value=repr(value)))
    return f"{parts.scheme}://{host}"


def normalise_name(value: str) -> str:
    name = value.strip()
    if not name:
        raise MerchantError(lazy_gettext("name must not be empty"))
    return name


def normalise_webhook_url(value: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise MerchantError(lazy_gettext(
            "webhook URL %(value)s must be an http(s) URL", value=repr(value)))
    return url


def public_webhook_url(value: str) -> str:
    """`normalise_webhook_url`, and no host that names this machine or a private network:
    set from the back office (outside sandbox mode), the site would otherwise post to, and
    show the answers of, services only it can reach. (A name that resolves to such an
    address is not caught here: DNS can change after the check.)"""
    url = normalise_webhook_url(value)
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        internal = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    else:
        mapped = getattr(address, "ipv4_mapped", None)
        internal = not (mapped or address).is_global
    if internal:
        raise MerchantError(lazy_gettext(
            "webhook URL %(value)s names this machine or a private network",
            value=repr(value)))
    return url


@dataclass(frozen=True)
class NewMerchant:
    client_id: int
    name: str
    key: str
    secret: str
    return_hosts: tuple[str, ...] = ()
    frame_origins: tuple[str, ...] = ()
    webhook_url: str | None = None
    language: str | None = None


def normalise_language(value: str) -> str:
    """A language the site speaks, as its locale id: `de`, `pt-BR` -> `pt_BR`, `zh-CN` ->
    `zh_Hans`; anything else is refused with the list."""
    found = i18n.match(value.strip(), i18n.LANGUAGES)
    if found is None:
        raise MerchantError(lazy_gettext(
            "language %(value)s is not one this site speaks (%(languages)s)",
            value=repr(value),
            languages=", ".join(i18n.tag(c) for c in i18n.LANGUAGES)))
    return found


def add(new: NewMerchant) -> Merchant:
    """Validate and store a merchant; in sandbox mode also open its processor account."""
    if new.client_id <= 0:
        raise MerchantError("client id must be a positive whole number")
    normalise_name(new.name)
    if not new.key or not new.secret:
        raise MerchantError("key and secret must not be empty")
    merchant = Merchant(
        client_id=new.client_id,
        name=new.name.strip(),
        api_key=new.key,
        api_secret=new.secret,
        webhook_url=normalise_webhook_url(new.webhook_url) if new.webhook_url else None,
        language=normalise_language(new.language) if new.language else None,
    )
    merchant.return_hosts = sorted({normalise_return_host(h) for h in new.return_hosts})
    merchant.frame_origins = sorted({normalise_frame_origin(o) for o in new.frame_origins})
    with db.transaction() as s:
        if s.get(Merchant, new.client_id) is not None:
            raise MerchantError(f"a merchant with client id {new.client_id} exists already")
        if s.scalar(select(Merchant).where(Merchant.api_key == new.key)) is not None:
            raise MerchantError("another merchant has this API key already")
        s.add(merchant)
    open_sandbox_account(merchant)
    return merchant


def open_sandbox_account(merchant: Merchant) -> None:
    """In sandbox mode the embedded processor holds the same key and secret: open or update
    its account (after our own commit, as it has its own database)."""
    open_account = current_app.extensions.get("sandbox.open_account")
    if open_account is not None:
        open_account(merchant.client_id, merchant.api_key, merchant.api_secret)


def normalise_secret(value: str) -> str:
    """An API secret as the processor issued it: printable, without spaces (a pasted line
    break or space is a copying slip, and would never verify)."""
    secret = value.strip()
    if not secret:
        raise MerchantError(lazy_gettext("the secret must not be empty"))
    if len(secret) > 255 or not all(33 <= ord(c) < 127 for c in secret):
        raise MerchantError(lazy_gettext(
            "the secret must be at most 255 printable characters without "
            "spaces, exactly as issued"))
    return secret


def replace_secret(session: Session, client_id: int,
                   issued: str | None = None) -> tuple[Merchant, str]:
    """Replace the merchant's API secret inside the caller's transaction: with `issued` (the
    processor issued it), or a new random one (sandbox mode, whose processor follows ours).
    Returned once for the caller; never logged."""
    secret = normalise_secret(issued) if issued is not None else secrets.token_urlsafe(32)
    merchant = session.get(Merchant, client_id, with_for_update=True)
    if merchant is None:
        raise MerchantError(f"no merchant with client id {client_id}")
    merchant.api_secret = secret
    return merchant, secret


@dataclass(frozen=True)
class MerchantEdit:
    """What `merchant edit` changes; None and () leave a setting as it is."""

    name: str | None = None
    add_return_hosts: tuple[str, ...] = ()
    remove_return_hosts: tuple[str, ...] = ()
    add_frame_origins: tuple[str, ...] = ()
    remove_frame_origins: tuple[str, ...] = ()
    webhook_url: str | None = None
    no_webhook: bool = False
    language: str | None = None
    brand: branding.BrandEdit = branding.BrandEdit()
    # Policies for money that did not arrive as asked (policies.py), as typed.
    underpaid_percent: str | None = None
    underpaid_fiat: str | None = None
    policy_currency: str | None = None
    late_accept: bool | None = None
    refund_auto_below: str | None = None

    def is_empty(self) -> bool:
        return self == MerchantEdit()


POLICY_OPTION_NAMES = ("--underpaid-percent, --underpaid-fiat, --policy-currency, "
                       "--late-accept, --no-late-accept, --refund-auto-below")


def normalise_policy_currency(value: str) -> str:
    """The fiat currency the policies' amounts are in, such as EUR."""
    code = value.strip().upper()
    if not currencies.is_fiat(code):
        raise MerchantError(lazy_gettext("%(value)s is not a fiat currency this site knows, "
                                         "such as EUR or USD", value=repr(value.strip()[:16])))
    return code


def _policy_value(parse: Any, value: str | None) -> str | None:
    """A policy value as stored (canonical text), or MerchantError with the parser's words."""
    if value is None:
        return None
    try:
        return policies.text(parse(value))
    except policies.PolicyError as exc:
        raise MerchantError(exc.args[0]) from exc


def _policy_values(change: MerchantEdit) -> list[tuple[str, str, object]]:
    """(words, column, stored value or None: unchanged) of each policy; MerchantError for
    the first bad one."""
    return [
        ("underpaid percent", "underpaid_percent",
         _policy_value(policies.parse_percent, change.underpaid_percent)),
        ("underpaid fiat", "underpaid_fiat",
         _policy_value(policies.parse_fiat, change.underpaid_fiat)),
        ("policy currency", "policy_currency",
         normalise_policy_currency(change.policy_currency)
         if change.policy_currency is not None else None),
        ("late accept", "late_accept", change.late_accept),
        ("refund auto below", "refund_auto_below",
         _policy_value(policies.parse_fiat, change.refund_auto_below)),
    ]


def _apply_policies(merchant: Merchant, values: list[tuple[str, str, object]]) -> list[str]:
    changes = []
    for words, column, value in values:
        if value is not None and value != getattr(merchant, column):
            shown = ("yes" if value else "no") if isinstance(value, bool) else value
            changes.append(f"{words}: {shown}")
            setattr(merchant, column, value)
    return changes


def _edited(label: str, current: list[str], added: set[str], removed: set[str]) -> list[str]:
    """The setting after the edit; removing what is not there is a typo, and refused."""
    both = added & removed
    if both:
        raise MerchantError(f"{label} {sorted(both)[0]!r} is both added and removed")
    missing = removed - set(current)
    if missing:
        raise MerchantError(
            f"{label} {sorted(missing)[0]!r} is not registered "
            f"(registered: {', '.join(current) or 'none'}); nothing was changed")
    return sorted((set(current) - removed) | added)


def edit(client_id: int, change: MerchantEdit) -> tuple[Merchant, list[str]]:
    """Apply `change` all at once or not at all; the merchant and what changed, in words.

    The key and secret are not editable here: in sandbox mode they are also the embedded
    processor's account, which must not drift from ours.
    """
    with db.transaction() as s:
        return edit_in(s, client_id, change)


def edit_in(s: Session, client_id: int, change: MerchantEdit) -> tuple[Merchant, list[str]]:
    """`edit` inside the caller's transaction: the back office writes its audit entry in
    the same one. Every check runs before anything changes; a failing one changes nothing."""
    if change.is_empty():
        raise MerchantError("nothing to change: give --name, --return-host, "
                            "--remove-return-host, --frame-origin, --remove-frame-origin, "
                            "--webhook-url, --no-webhook, --language, "
                            f"{branding.OPTION_NAMES}, {POLICY_OPTION_NAMES}")
    if change.webhook_url is not None and change.no_webhook:
        raise MerchantError("give either --webhook-url or --no-webhook, not both")
    if change.name is not None:
        normalise_name(change.name)
    add_hosts = {normalise_return_host(h) for h in change.add_return_hosts}
    remove_hosts = {normalise_return_host(h) for h in change.remove_return_hosts}
    add_origins = {normalise_frame_origin(o) for o in change.add_frame_origins}
    remove_origins = {normalise_frame_origin(o) for o in change.remove_frame_origins}
    webhook = normalise_webhook_url(change.webhook_url) if change.webhook_url else None
    language = normalise_language(change.language) if change.language is not None else None
    policy_values = _policy_values(change)
    changes: list[str] = []
    merchant = s.get(Merchant, client_id, with_for_update=True)
    if merchant is None:
        raise MerchantError(f"no merchant with client id {client_id} "
                            "(see `flask --app checkout merchant list`)")
    hosts = _edited("return host", merchant.return_hosts, add_hosts, remove_hosts)
    origins = _edited("frame origin", merchant.frame_origins, add_origins, remove_origins)
    if change.name is not None and change.name.strip() != merchant.name:
        changes.append(f"name: {merchant.name} -> {change.name.strip()}")
        merchant.name = change.name.strip()
    if hosts != merchant.return_hosts:
        changes.append(f"return hosts: {', '.join(hosts) or '-'}")
        merchant.return_hosts = hosts
    if origins != merchant.frame_origins:
        changes.append(f"frame origins: {', '.join(origins) or '-'}")
        merchant.frame_origins = origins
    new_webhook = None if change.no_webhook else webhook or merchant.webhook_url
    if new_webhook != merchant.webhook_url:
        changes.append(f"webhook: {new_webhook or '-'}")
        merchant.webhook_url = new_webhook
    if language is not None and language != merchant.language:
        changes.append(f"language: {i18n.tag(language)}")
        merchant.language = language
    try:
        changes += branding.apply(merchant, change.brand)
    except branding.BrandError as exc:
        raise MerchantError(exc.message) from exc
    changes += _apply_policies(merchant, policy_values)
    return merchant, changes


# ---------------------------------------------------------------- merchants kept per process
#
# Every link, callback and API call needs its merchant (the secret above all), and merchants
# change only when an operator edits one. Each process keeps what it read, as immutable
# snapshots tagged with the version of `merchants_version` they were read at. A request reads
# that one-row table (or gets it in the SELECT it makes anyway: the terminal link's), and
# uses its snapshot only when the versions agree; every transaction that changes a merchant
# raises the version (`_raise_version`, a flush hook: no writer through the ORM can forget
# it; a bulk UPDATE of the table would have to raise it itself, and none does), so an edit
# counts at every process's next request.

MERCHANT_COLUMNS = tuple(c.key for c in Merchant.__table__.columns)
VERSION = select(MerchantsVersion.version).where(MerchantsVersion.id == 1).scalar_subquery()
READ_VERSION = select(MerchantsVersion.version).where(MerchantsVersion.id == 1)


@dataclass(frozen=True)
class Snapshot:
    """A merchant's columns as read at `version`; shared by the process's threads, so never
    an ORM object: each caller gets a copy of its own (`merchant`)."""

    version: int
    client_id: int
    api_key: str
    api_secret: str
    language: str | None
    values: tuple[tuple[str, Any], ...]  # every column, as read

    def merchant(self) -> Merchant:
        """A Merchant of the caller's own: in no session, so that nothing written to it
        reaches the database, and detached, so that a relationship (the logo) is not
        silently empty but refused: code that needs one reads the merchant in its session."""
        copy = Merchant(**dict(self.values))
        make_transient_to_detached(copy)
        return copy


def snapshot_of(row: Any) -> Snapshot:
    """A snapshot of a row of every merchant column and `version`."""
    mapping = row._mapping
    return Snapshot(int(mapping["version"] or 0), mapping["client_id"], mapping["api_key"],
                    mapping["api_secret"], mapping["language"],
                    tuple((name, mapping[name]) for name in MERCHANT_COLUMNS))


@dataclass(frozen=True)
class _Kept:
    version: int
    by_id: dict[int, Snapshot]
    by_key: dict[str, Snapshot]


class MerchantCache:
    """A process's merchants, for one version at a time. Readers take the current `_Kept`
    without a lock (one attribute read); writers replace it whole, under the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept = _Kept(-1, {}, {})

    def by_id(self, version: int, client_id: int) -> Snapshot | None:
        kept = self._kept
        return kept.by_id.get(client_id) if kept.version == version else None

    def by_key(self, version: int, api_key: str) -> Snapshot | None:
        kept = self._kept
        return kept.by_key.get(api_key) if kept.version == version else None

    def keep(self, snapshot: Snapshot) -> None:
        """Keep a snapshot; one older than those kept is dropped (the version only rises),
        a newer one starts afresh."""
        with self._lock:
            kept = self._kept
            if snapshot.version < kept.version:
                return
            if snapshot.version > kept.version:
                kept = _Kept(snapshot.version, {}, {})
            self._kept = _Kept(kept.version, {**kept.by_id, snapshot.client_id: snapshot},
                               {**kept.by_key, snapshot.api_key: snapshot})


CACHE_EXTENSION = "checkout.merchants"


def cache_of(app: Flask) -> MerchantCache:
    cache: MerchantCache = app.extensions[CACHE_EXTENSION]
    return cache


# In a session's `info`: the version its request read when it authenticated, so that code
# later in the same request (a page's model, built at a commit) finds the merchant kept
# instead of reading its row again. It lives as long as the session, which db.py removes
# with the request's app context; a rollback forgets it.
VERSION_READ = "checkout.merchants_version"


def read_version(session: Session) -> int:
    """The merchants' version now: one row by primary key, no merchant row.

    A session with no transaction yet (a request authenticating its caller) reads it beside
    the session, as the reads in front of Flask do (db.DirectRead): through the ORM the
    statement cost a signed request more than its signature. Inside a transaction it is
    read there, where the transaction's own change to a merchant may have raised it."""
    reader = None if session.in_transaction() else _version_reader(session.get_bind())
    if reader is None:
        found = session.scalar(READ_VERSION)
    else:
        row = reader.read({})
        found = None if row is None else row.version
    return note_version(session, int(found or 0))


VERSION_READER = "checkout.merchants.version_reader"


def _version_reader(engine: Any) -> db.DirectRead | None:
    """The app's direct read of the version, on its engine (kept in the app, which the
    engine outlives nowhere); None outside an app or on another engine."""
    if not has_app_context() or engine is not db.engine():
        return None
    found: db.DirectRead | None = current_app.extensions.get(VERSION_READER)
    if found is None or found.engine is not engine:
        found = current_app.extensions[VERSION_READER] = db.DirectRead(engine, READ_VERSION)
    return found


def note_version(session: Session, version: int) -> int:
    session.info[VERSION_READ] = version
    return version


def _forget_version(session: Session, *_args: Any) -> None:
    session.info.pop(VERSION_READ, None)


event.listen(Session, "after_rollback", _forget_version)


def in_transaction(session: Session, client_id: int) -> Merchant | None:
    """The merchant for code inside a request's transaction: the kept copy when the request
    read the version already (its authentication did), else its row, in the session."""
    version = session.info.get(VERSION_READ)
    if version is not None and has_app_context():
        kept = cache_of(current_app).by_id(version, client_id)
        if kept is not None:
            return kept.merchant()
    return session.get(Merchant, client_id)


def load(session: Session, where: Any) -> Snapshot | None:
    """A merchant and the version in one statement (one snapshot of the database), kept."""
    row = session.execute(select(*Merchant.__table__.columns, VERSION.label("version"))
                          .where(where)).first()
    if row is None:
        return None
    found = snapshot_of(row)
    note_version(session, found.version)
    cache_of(current_app).keep(found)
    return found


def snapshot_by_client_id(session: Session, client_id: int,
                          version: int | None = None) -> Snapshot | None:
    """The merchant from this process's cache when it holds `version` (read now when not
    given), else from the database."""
    if version is None:
        version = read_version(session)
    kept = cache_of(current_app).by_id(version, client_id)
    return kept if kept is not None else load(session, Merchant.client_id == client_id)


def by_client_id(client_id: int) -> Merchant | None:
    """The merchant as of now, a copy of the caller's own (Snapshot.merchant); to change a
    merchant, read it in the session that writes (`session.get`)."""
    found = snapshot_by_client_id(db.session(), client_id)
    return found.merchant() if found is not None else None


def by_key(api_key: str) -> Merchant | None:
    """As `by_client_id`, by API key: one statement (the version) when the process has it."""
    session = db.session()
    kept = cache_of(current_app).by_key(read_version(session), api_key)
    found = kept if kept is not None else load(session, Merchant.api_key == api_key)
    return found.merchant() if found is not None else None


def _changes_merchants(session: Session) -> bool:
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, (Merchant, MerchantLogo)):
            return True
    return any(isinstance(obj, (Merchant, MerchantLogo)) and session.is_modified(obj)
               for obj in session.dirty)


def _raise_version(session: Session, _context: Any, _instances: Any) -> None:
    """Before a flush that writes a merchant or a logo: raise the version in the same
    transaction, so that it commits (or rolls back) with the change."""
    if not _changes_merchants(session):
        return
    _forget_version(session)  # what this request read before is no longer the merchant
    connection = session.connection()
    upsert = db.conflict_insert(connection.dialect.name, MerchantsVersion)
    connection.execute(upsert.values(id=1, version=1).on_conflict_do_update(
        index_elements=[MerchantsVersion.id],
        set_={"version": MerchantsVersion.version + 1}))


event.listen(Session, "before_flush", _raise_version)


LANGUAGE_HELP = ("The pages' language for customers whose browser asks for none the site "
                 "speaks, e.g. de or pt-BR (default: English).")
merchant_cli = AppGroup("merchant", help="Add, edit and list the merchants this site serves.")

RETURN_HOSTS_NOTE = (
    "Return hosts must be registered: a terminal link's url_back (and an invoice's url_success "
    "and url_failed) on any other host is refused.")


def policy_summary(m: Merchant) -> str:
    p = policies.of(m)
    return (f"underpaid: {policies.text(p.underpaid_percent)} % and "
            f"{policies.text(p.underpaid_fiat)} {p.currency}; "
            f"late accepted: {'yes' if p.late_accept else 'no'}; "
            f"refunds approved below: {policies.text(p.refund_auto_below)} {p.currency}")


def _operator_line(m: Merchant) -> str:
    """One line for operators, never the key or the secret."""
    return (f"{m.client_id}\t{m.name}\treturn hosts: {', '.join(m.return_hosts) or '-'}\t"
            f"frame origins: {', '.join(m.frame_origins) or '-'}\t"
            f"webhook: {m.webhook_url or '-'}\t"
            f"language: {i18n.tag(m.language) if m.language else '-'}\t"
            f"{policy_summary(m)}"
            + (f"\t{brand}" if (brand := branding.branding_summary(m)) else ""))


@merchant_cli.command("add")
@click.option("--client-id", type=int, required=True, help="CoinsPaid client id.")
@click.option("--name", required=True)
@click.option("--key", required=True, help="CoinsPaid API key, exactly as issued.")
@click.option("--secret", required=True, help="CoinsPaid API secret, exactly as issued.")
@click.option("--return-host", "return_hosts", multiple=True,
              help="Host allowed in url_back/url_success/url_failed (repeatable).")
@click.option("--frame-origin", "frame_origins", multiple=True,
              help="Origin allowed to frame the page, e.g. https://shop.example (repeatable).")
@click.option("--webhook-url", help="Where processor callbacks are forwarded.")
@click.option("--language", help=LANGUAGE_HELP)
def add_command(client_id: int, name: str, key: str, secret: str, return_hosts: tuple[str, ...],
                frame_origins: tuple[str, ...], webhook_url: str | None,
                language: str | None) -> None:
    """Add a merchant. The key and secret are stored, never printed back."""
    try:
        merchant = add(NewMerchant(client_id, name, key, secret, return_hosts, frame_origins,
                                   webhook_url, language))
    except MerchantError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added merchant {merchant.client_id} ({merchant.name})")
    click.echo(_operator_line(merchant))
    if not merchant.return_hosts:
        click.echo(f"{RETURN_HOSTS_NOTE} This merchant has none yet; add one with:\n"
                   f"  flask --app checkout merchant edit --client-id {merchant.client_id} "
                   "--return-host shop.example")


@merchant_cli.command("edit")
@click.option("--client-id", type=int, required=True, help="CoinsPaid client id.")
@click.option("--name", help="A new display name.")
@click.option("--return-host", "return_hosts", multiple=True,
              help="Add a host allowed in url_back/url_success/url_failed (repeatable).")
@click.option("--remove-return-host", "removed_hosts", multiple=True,
              help="Remove a registered return host (repeatable).")
@click.option("--frame-origin", "frame_origins", multiple=True,
              help="Add an origin allowed to frame the page (repeatable).")
@click.option("--remove-frame-origin", "removed_origins", multiple=True,
              help="Remove a registered frame origin (repeatable).")
@click.option("--webhook-url", help="Forward processor callbacks here from now on.")
@click.option("--no-webhook", is_flag=True, help="Stop forwarding callbacks.")
@click.option("--language", help=LANGUAGE_HELP)
@click.option("--underpaid-percent", help="A deposit page short by at most this percent (0 to "
              "10) and at most --underpaid-fiat counts as paid; 0: no tolerance.")
@click.option("--underpaid-fiat", help="The most a tolerated shortfall may be worth, in the "
              "policy currency, e.g. 2.50; 0: no tolerance.")
@click.option("--policy-currency", help="The fiat currency of the policies' amounts, e.g. EUR.")
@click.option("--late-accept/--no-late-accept", default=None,
              help="Accept money arriving after the time ran out when its value then still "
                   "covers the price (default: accept).")
@click.option("--refund-auto-below", help="Approve refunds worth less than this (policy "
              "currency) without a person; 0: a person approves every refund.")
@branding.brand_options
def edit_command(client_id: int, name: str | None, return_hosts: tuple[str, ...],
                 removed_hosts: tuple[str, ...], frame_origins: tuple[str, ...],
                 removed_origins: tuple[str, ...], webhook_url: str | None,
                 no_webhook: bool, language: str | None, underpaid_percent: str | None,
                 underpaid_fiat: str | None, policy_currency: str | None,
                 late_accept: bool | None, refund_auto_below: str | None,
                 **brand: Any) -> None:
    """Change a merchant's settings at once, without a restart (all or nothing).

    The key and secret stay as they are; they are never printed.
    """
    try:
        change = MerchantEdit(name, return_hosts, removed_hosts, frame_origins,
                              removed_origins, webhook_url, no_webhook, language,
                              branding.edit_from_options(**brand),
                              underpaid_percent=underpaid_percent,
                              underpaid_fiat=underpaid_fiat, policy_currency=policy_currency,
                              late_accept=late_accept, refund_auto_below=refund_auto_below)
        merchant, changes = edit(client_id, change)
    except branding.BrandError as exc:
        raise click.ClickException(str(exc)) from exc
    except MerchantError as exc:
        raise click.ClickException(str(exc)) from exc
    if changes:
        click.echo(f"merchant {merchant.client_id} changed: " + "; ".join(changes))
    else:
        click.echo(f"merchant {merchant.client_id}: nothing changed (already so)")
    click.echo(_operator_line(merchant))


@merchant_cli.command("list")
def list_command() -> None:
    """List merchants (without keys or secrets)."""
    merchants = db.session().scalars(select(Merchant).order_by(Merchant.client_id)).all()
    if not merchants:
        click.echo("no merchants yet: add one with `flask --app checkout merchant add`")
    for m in merchants:
        click.echo(_operator_line(m))


def init_app(app: Flask) -> None:
    app.extensions[CACHE_EXTENSION] = MerchantCache()
    app.cli.add_command(merchant_cli)
