"""A merchant's settings from the back office: the same checks and the same edit as the
`merchant edit` command (merchants.py, branding.py), with an error per field, the code asked
again before a sensitive change, and an audit entry in the same transaction as the change.

A form sends the whole state of its fields; the edit is what differs from what is stored,
so sending the form back unchanged changes nothing (and a duplicate POST is harmless).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias, TypeVar

from flask_babel import lazy_gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, branding, i18n, merchants, policies
from ..models import Merchant
from . import signin

Message: TypeAlias = branding.Message

# The setting names an audit entry lists (never a value of the secret).
NAME, DISPLAY_NAME, ACCENT, LANGUAGE, LOGO, INSTRUCTIONS = (
    "name", "display_name", "accent", "language", "logo", "instructions")
WEBHOOK_URL, RETURN_HOSTS, FRAME_ORIGINS, API_SECRET = (
    "webhook_url", "return_hosts", "frame_origins", "api_secret")
UNDERPAID_PERCENT, UNDERPAID_FIAT, POLICY_CURRENCY, LATE_ACCEPT, REFUND_AUTO_BELOW = (
    "underpaid_percent", "underpaid_fiat", "policy_currency", "late_accept",
    "refund_auto_below")
# The fiat currencies the policy form offers first (any the site knows is accepted).
POLICY_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "PLN", "SEK", "NOK",
                     "CZK", "TRY", "BRL", "INR")
CONFIRM_CODE = "confirm_code"
SECRET_FIELD = "new_secret"  # noqa: S105 (a form field's name)
DEFAULT_LANGUAGE = "en"  # what a merchant without a language gets

T = TypeVar("T")
V = TypeVar("V")
# How `merchants.edit` words each change -> the setting's name.
_FIELD_OF_CHANGE = {"name": NAME, "display name": DISPLAY_NAME, "accent": ACCENT,
                    "language": LANGUAGE, "logo": LOGO, "instructions": INSTRUCTIONS,
                    "webhook": WEBHOOK_URL, "return hosts": RETURN_HOSTS,
                    "frame origins": FRAME_ORIGINS, "underpaid percent": UNDERPAID_PERCENT,
                    "underpaid fiat": UNDERPAID_FIAT, "policy currency": POLICY_CURRENCY,
                    "late accept": LATE_ACCEPT, "refund auto below": REFUND_AUTO_BELOW}


class Invalid(ValueError):
    """The form cannot be accepted; `errors` maps a field to its message (the checks' own
    words, kept lazy: the page renders them in the person's language), "" to one about the
    form as a whole. Nothing was changed."""

    def __init__(self, errors: Mapping[str, Message]) -> None:
        super().__init__("; ".join(str(message) for message in errors.values()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Actor:
    """Who acts, for the audit entry and the code asked again."""

    user_id: int
    email: str
    address: str | None = None


@dataclass(frozen=True)
class BrandForm:
    """The branding form as sent: every text field whole (empty: none)."""

    name: str
    display_name: str = ""
    accent: str = ""
    language: str = ""
    instructions: Mapping[str, str] = field(default_factory=dict)  # key -> text
    logo: bytes | None = None  # an uploaded file, when one was chosen
    remove_logo: bool = False


@dataclass(frozen=True)
class DeveloperForm:
    """The developer form as sent: the lists one entry a line."""

    webhook_url: str = ""
    return_hosts: str = ""
    frame_origins: str = ""


@dataclass(frozen=True)
class PolicyForm:
    """The policies form as sent: the amounts as typed."""

    underpaid_percent: str = "0"
    underpaid_fiat: str = "0"
    policy_currency: str = "EUR"
    late_accept: bool = True
    refund_auto_below: str = "0"


@dataclass(frozen=True)
class Settings:
    """What the settings page shows of a merchant: never its key or secret."""

    client_id: int
    name: str
    display_name: str
    accent: str
    language: str
    instructions: dict[str, str]
    logo: tuple[int, int] | None  # width, height
    webhook_url: str
    return_hosts: list[str]
    frame_origins: list[str]
    policy: PolicyForm = PolicyForm()  # as stored, in the form's words


def instruction_keys(current: Mapping[str, str]) -> list[str]:
    """The instructions a form offers: the default, each language the site speaks, and any
    other language the merchant set by command."""
    keys = [branding.DEFAULT, *i18n.LANGUAGES]
    return keys + sorted(k for k in current if k not in keys)


def merchant_names(session: Session, merchant_ids: list[int] | None) -> list[tuple[int, str]]:
    """(client id, name) of the merchants `merchant_ids` bounds (None: every one)."""
    query = select(Merchant.client_id, Merchant.name).order_by(Merchant.client_id)
    if merchant_ids is not None:
        query = query.where(Merchant.client_id.in_(merchant_ids))
    return [(c, n) for c, n in session.execute(query).all()]


def settings_of(session: Session, client_id: int) -> Settings | None:
    merchant = session.get(Merchant, client_id)
    if merchant is None:
        return None
    logo = merchant.logo
    return Settings(
        client_id=merchant.client_id, name=merchant.name,
        display_name=merchant.display_name or "", accent=merchant.accent or "",
        language=merchant.language or DEFAULT_LANGUAGE, instructions=merchant.instructions,
        logo=(logo.width, logo.height) if logo is not None else None,
        webhook_url=merchant.webhook_url or "", return_hosts=merchant.return_hosts,
        frame_origins=merchant.frame_origins, policy=_policy_of(merchant))


def _policy_of(merchant: Merchant) -> PolicyForm:
    stored = policies.of(merchant)
    return PolicyForm(underpaid_percent=policies.text(stored.underpaid_percent),
                      underpaid_fiat=policies.text(stored.underpaid_fiat),
                      policy_currency=stored.currency, late_accept=stored.late_accept,
                      refund_auto_below=policies.text(stored.refund_auto_below))


def logo_digest(session: Session, client_id: int) -> str | None:
    merchant = session.get(Merchant, client_id)
    logo = merchant.logo if merchant is not None else None
    return logo.digest[:16] if logo is not None else None


# ---------------------------------------------------------------- checking a form


def _check(errors: dict[str, Message], name: str, check: Callable[[V], T],
           value: V) -> T | None:
    """`check(value)`, or its error under `name` (still lazy)."""
    try:
        return check(value)
    except (merchants.MerchantError, branding.BrandError) as exc:
        errors[name] = exc.message
        return None


def _check_or_raise(name: str, check: Callable[[str], str], value: str) -> None:
    errors: dict[str, Message] = {}
    _check(errors, name, check, value)
    if errors:
        raise Invalid(errors)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _brand_edit(current: Settings, form: BrandForm) -> merchants.MerchantEdit:
    """The edit the branding form asks for, each field checked by the command's own check
    (an error per field), then the whole by the command's own assembly."""
    errors: dict[str, Message] = {}
    name = _check(errors, NAME, merchants.normalise_name, form.name)
    display = form.display_name.strip()
    if display:
        display = _check(errors, DISPLAY_NAME, branding.normalise_display_name, display) or ""
    accent = form.accent.strip()
    if accent:
        accent = _check(errors, ACCENT, branding.normalise_accent, accent) or ""
    language = _check(errors, LANGUAGE, merchants.normalise_language,
                      form.language or DEFAULT_LANGUAGE)
    keys = set(instruction_keys(current.instructions))
    texts: dict[str, str] = {}
    for key, text in form.instructions.items():
        if key not in keys:
            errors[f"instructions-{key}"] = lazy_gettext("language %(value)s is not offered here",
                                                         value=repr(key))
        elif text.strip():
            if (checked := _check(errors, f"instructions-{key}",
                                  branding.normalise_instructions, text)) is not None:
                texts[key] = checked
    if form.logo is not None and form.remove_logo:
        errors[LOGO] = lazy_gettext("give either a new logo or remove it, not both")
    elif form.logo is not None:
        _check(errors, LOGO, branding.decode_logo, form.logo)
    if errors:
        raise Invalid(errors)
    removed = tuple(k for k in current.instructions if k not in texts)
    changed = tuple((k, t) for k, t in texts.items()
                    if k != branding.DEFAULT and current.instructions.get(k) != t)
    default = texts.get(branding.DEFAULT)
    try:
        brand = branding.edit_from_options(
            display_name=display if display and display != current.display_name else None,
            no_display_name=not display and bool(current.display_name),
            logo_path=None, logo_data=form.logo,
            no_logo=form.remove_logo and current.logo is not None,
            accent=accent if accent and accent != current.accent else None,
            no_accent=not accent and bool(current.accent),
            instructions=(default if default != current.instructions.get(branding.DEFAULT)
                          else None),
            instructions_for=changed, removed_instructions=removed, no_instructions=False)
    except branding.BrandError as exc:
        raise Invalid({"": exc.message}) from exc
    return merchants.MerchantEdit(
        name=name if name != current.name else None,
        language=language if language != current.language else None,
        brand=brand)


def _developer_edit(current: Settings, form: DeveloperForm, *,
                    public_only: bool = False) -> merchants.MerchantEdit:
    errors: dict[str, Message] = {}
    webhook = form.webhook_url.strip()
    if webhook:
        _check(errors, WEBHOOK_URL, merchants.public_webhook_url if public_only
               else merchants.normalise_webhook_url, webhook)
    hosts: set[str] = set()
    for line in _lines(form.return_hosts):
        if (host := _check(errors, RETURN_HOSTS, merchants.normalise_return_host, line)):
            hosts.add(host)
    origins: set[str] = set()
    for line in _lines(form.frame_origins):
        if (origin := _check(errors, FRAME_ORIGINS, merchants.normalise_frame_origin, line)):
            origins.add(origin)
    if errors:
        raise Invalid(errors)
    return merchants.MerchantEdit(
        webhook_url=webhook if webhook and webhook != current.webhook_url else None,
        no_webhook=not webhook and bool(current.webhook_url),
        add_return_hosts=tuple(sorted(hosts - set(current.return_hosts))),
        remove_return_hosts=tuple(sorted(set(current.return_hosts) - hosts)),
        add_frame_origins=tuple(sorted(origins - set(current.frame_origins))),
        remove_frame_origins=tuple(sorted(set(current.frame_origins) - origins)))


def _policy_text(errors: dict[str, Message], name: str,
                 parse: Callable[[str], object], value: str) -> str | None:
    try:
        return policies.text(parse(value))  # type: ignore[arg-type]
    except policies.PolicyError as exc:
        errors[name] = exc.args[0]
        return None


def _policy_edit(current: Settings, form: PolicyForm) -> merchants.MerchantEdit:
    """Each value checked by the command's own parsers (an error per field); only what
    differs from what is stored is changed."""
    errors: dict[str, Message] = {}
    percent = _policy_text(errors, UNDERPAID_PERCENT, policies.parse_percent,
                           form.underpaid_percent)
    fiat = _policy_text(errors, UNDERPAID_FIAT, policies.parse_fiat, form.underpaid_fiat)
    auto = _policy_text(errors, REFUND_AUTO_BELOW, policies.parse_fiat, form.refund_auto_below)
    currency = _check(errors, POLICY_CURRENCY, merchants.normalise_policy_currency,
                      form.policy_currency)
    if errors:
        raise Invalid(errors)
    was = current.policy
    return merchants.MerchantEdit(
        underpaid_percent=percent if percent != was.underpaid_percent else None,
        underpaid_fiat=fiat if fiat != was.underpaid_fiat else None,
        policy_currency=currency if currency != was.policy_currency else None,
        late_accept=form.late_accept if form.late_accept != was.late_accept else None,
        refund_auto_below=auto if auto != was.refund_auto_below else None)


def changed_fields(changes: list[str]) -> list[str]:
    """The names of the settings `merchants.edit` says it changed, for the audit entry."""
    return [_FIELD_OF_CHANGE.get(words.split(":")[0], words.split(":")[0])
            for words in changes]


# ---------------------------------------------------------------- saving


def _settings_or_invalid(session: Session, client_id: int) -> Settings:
    current = settings_of(session, client_id)
    if current is None:
        raise Invalid({"": f"no merchant with client id {client_id}"})
    return current


def _save(session: Session, client_id: int, change: merchants.MerchantEdit, *, actor: Actor,
          action: str) -> list[str]:
    if change.is_empty():
        return []
    try:
        _, changes = merchants.edit_in(session, client_id, change)
    except merchants.MerchantError as exc:
        raise Invalid({"": exc.message}) from exc
    if changes:
        audit.record(session, action, actor=actor.email, user_id=actor.user_id,
                     merchant_id=client_id, target=str(client_id),
                     detail={"fields": changed_fields(changes), "changes": changes},
                     address=actor.address)
    return changes


def save_brand(session: Session, client_id: int, form: BrandForm, *,
               actor: Actor) -> list[str]:
    """Apply the branding form all at once or not at all; what changed, in words (none:
    the form said what was stored already). Raises Invalid."""
    current = _settings_or_invalid(session, client_id)
    return _save(session, client_id, _brand_edit(current, form), actor=actor,
                 action="settings.brand")


def check_brand(session: Session, client_id: int, form: BrandForm) -> None:
    """The checks of `save_brand` without saving (the preview); raises Invalid."""
    _brand_edit(_settings_or_invalid(session, client_id), form)


def save_developer(session: Session, client_id: int, form: DeveloperForm, code: str, *,
                   actor: Actor, now: datetime, public_only: bool = False) -> list[str]:
    """Webhook URL, return hosts and frame origins: checked field by field, then the code
    asked again; all or nothing. Raises Invalid (the code's error under CONFIRM_CODE).
    `public_only`: the webhook may not name this machine or a private network."""
    change = _developer_edit(_settings_or_invalid(session, client_id), form,
                             public_only=public_only)
    if change.is_empty():
        return []
    _confirm(session, actor, code, now)
    return _save(session, client_id, change, actor=actor, action="settings.developer")


def auto_limit_changes(was: PolicyForm, change: merchants.MerchantEdit) -> bool:
    """Whether the edit changes what refunds approve themselves: the limit, or the currency
    a limit in force is counted in (100 JPY and 100 EUR are not the same limit)."""
    limit_in_force = was.refund_auto_below not in ("", "0")
    return change.refund_auto_below is not None or (
        change.policy_currency is not None and limit_in_force)


def save_policies(session: Session, client_id: int, form: PolicyForm, code: str, *,
                  actor: Actor, now: datetime) -> list[str]:
    """Underpayment tolerance, policy currency, late payments, the refunds' automatic
    approval: all or nothing. A new automatic approval limit asks the code again: it lets
    money leave the balance without a person. Raises Invalid."""
    current = _settings_or_invalid(session, client_id)
    change = _policy_edit(current, form)
    if change.is_empty():
        return []
    if auto_limit_changes(current.policy, change):
        _confirm(session, actor, code, now)
    return _save(session, client_id, change, actor=actor, action="settings.policies")


def replace_secret(session: Session, client_id: int, code: str, *, actor: Actor,
                   now: datetime, issued: str | None = None) -> str:
    """A new API secret after the code asked again: `issued` by the processor (outside
    sandbox mode the processor issues it: a random one would end every payment), else a
    random one for the one-time reveal. The audit entry says it was replaced, never what."""
    _settings_or_invalid(session, client_id)
    if issued is not None:
        _check_or_raise(SECRET_FIELD, merchants.normalise_secret, issued)
    _confirm(session, actor, code, now)
    _, secret = merchants.replace_secret(session, client_id, issued)
    audit.record(session, "settings.secret", actor=actor.email, user_id=actor.user_id,
                 merchant_id=client_id, target=str(client_id),
                 detail={"fields": [API_SECRET]}, address=actor.address)
    return secret


def after_secret_replaced(session: Session, client_id: int) -> None:
    """Once the new secret is committed: the sandbox's processor account follows it."""
    merchant = session.get(Merchant, client_id)
    if merchant is not None:
        merchants.open_sandbox_account(merchant)


def _confirm(session: Session, actor: Actor, code: str, now: datetime) -> None:
    problem = signin.confirm_code(session, actor.user_id, code.strip(), now=now)
    if problem is not None:
        raise Invalid({CONFIRM_CODE: problem})


# ---------------------------------------------------------------- the accent's preview


@dataclass(frozen=True)
class Swatch:
    scheme: str  # light, dark
    accent: str  # the colour pages use
    accent_text: str  # text on it
    card: str
    on_card: float  # contrast ratios, rounded down to one decimal
    text_on_accent: float


def swatches(accent: str) -> list[Swatch]:
    """The accent as pages show it in light and dark, with the contrast each reaches."""
    colour = branding.normalise_accent(accent)
    return [Swatch(scheme, s.accent, s.accent_text, branding.CARD[scheme],
                   int(branding.contrast(s.accent, branding.CARD[scheme]) * 10) / 10,
                   int(branding.contrast(s.accent, s.accent_text) * 10) / 10)
            for scheme, s in branding.palette(colour).items()]


def preview_stylesheet(accent: str) -> str:
    """Classes that paint the preview in the merchant's accent (the CSP allows no inline
    style): .preview-light and .preview-dark set the colours a sample page uses."""
    rules = []
    for swatch in swatches(accent):
        rules.append(f".preview-{swatch.scheme}{{--preview-accent:{swatch.accent};"
                     f"--preview-accent-text:{swatch.accent_text};"
                     f"--preview-card:{swatch.card}}}")
    return "\n".join(rules) + "\n"
