"""A merchant's settings: branding and language (SETTINGS), the webhook URL, return hosts,
frame origins and the API secret (DEVELOPER, with the code asked again). The checks are the
`merchant edit` command's own (services.merchant_settings); this module only reads forms
and shows pages."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from ... import branding, clock, db, i18n, roles
from ...services import merchant_settings as ms
from ...services import signin
from .base import bp, client_address, merchant_or_404, render, requires, signed

# The notices a redirect after a change names (?done=...).
DONE = ("brand", "developer", "secret", "policies", "unchanged")


def _merchant_id() -> int:
    """The ?merchant= of this request; anything else than a client id is not found."""
    raw = request.args.get("merchant", "")
    if not raw.isdigit() or len(raw) > 10:
        abort(404)
    return int(raw)


def _actor() -> ms.Actor:
    who = signed()
    return ms.Actor(who.user.id, who.user.email, client_address())


def error_messages(errors: dict[str, ms.Message]) -> dict[str, str]:
    """The service's errors for the page: its own words (the command's), read now in this
    request's language. Made plain text here, so that the template escapes them (a lazy
    string would pass as markup, and the words quote what was typed)."""
    shown = {name: str(message) for name, message in errors.items()}
    if shown.get(ms.CONFIRM_CODE) == signin.TOO_MANY_CODES:
        shown[ms.CONFIRM_CODE] = _("Too many wrong codes: nothing was changed. Wait a few "
                                   "minutes, then enter the code your app shows.")
    elif ms.CONFIRM_CODE in shown:
        shown[ms.CONFIRM_CODE] = _("That code is not right: nothing was changed. Enter the "
                                   "code your app shows now.")
    return shown


def _page(merchant_id: int, *, status: int = 200, brand: ms.BrandForm | None = None,
          developer: ms.DeveloperForm | None = None, policy: ms.PolicyForm | None = None,
          errors: dict[str, ms.Message] | None = None,
          part: str = "", secret: str | None = None, preview: str | None = None
          ) -> ResponseReturnValue:
    current = ms.settings_of(db.session(), merchant_id)
    if current is None:
        abort(404)
    who = signed()
    accent = preview if preview is not None else current.accent
    digest = ms.logo_digest(db.session(), merchant_id)
    context: dict[str, Any] = {
        "current": current, "brand": brand, "developer": developer,
        "policy": policy or current.policy, "policy_currencies": _policy_currencies(current),
        "errors": error_messages(errors or {}), "part": part, "secret": secret,
        "developer_allowed": who.access.can(roles.DEVELOPER, merchant_id),
        "brand_allowed": who.access.can(roles.SETTINGS, merchant_id),
        "instruction_keys": ms.instruction_keys(current.instructions),
        "language_names": {key: i18n.native_name(key)
                           for key in ms.instruction_keys(current.instructions)},
        "languages": [(code, i18n.native_name(code)) for code in i18n.LANGUAGES],
        "default_key": branding.DEFAULT,
        "accent": accent, "previewing": preview is not None,
        "swatches": ms.swatches(accent) if accent else [],
        "logo_url": (url_for("branding.logo_file", client_id=merchant_id, digest=digest)
                     if digest else None),
        "done": request.args.get("done") if request.args.get("done") in DONE else None,
        "max_logo_kb": branding.MAX_LOGO_BYTES // 1024,
        "sandbox": _sandbox(),
    }
    return render("console/settings.html", **context), status


@bp.route("/settings")
@requires(roles.CONFIGURE)
def settings() -> ResponseReturnValue:
    if "merchant" not in request.args:
        choices = ms.merchant_names(db.session(), signed().access.merchants(roles.CONFIGURE))
        if len(choices) == 1:
            return redirect(url_for("console.settings", merchant=choices[0][0]))
        return render("console/choose_merchant.html", choices=choices,
                      endpoint="console.settings", title=_("Settings"))
    merchant_id = _merchant_id()
    merchant_or_404(merchant_id, roles.CONFIGURE)
    return _page(merchant_id)


def _brand_form() -> ms.BrandForm:
    upload = request.files.get("logo")
    data = upload.read(branding.MAX_LOGO_BYTES + 1) if upload and upload.filename else None
    prefix = "instructions-"
    return ms.BrandForm(
        name=request.form.get("name", ""),
        display_name=request.form.get("display_name", ""),
        accent=request.form.get("accent", ""),
        language=request.form.get("language", ""),
        instructions={key.removeprefix(prefix): value for key, value in request.form.items()
                      if key.startswith(prefix)},
        logo=data or None,
        remove_logo=request.form.get("remove_logo") == "1")


def _done(merchant_id: int, changes: list[str], part: str) -> ResponseReturnValue:
    return redirect(url_for("console.settings", merchant=merchant_id,
                            done=part if changes else "unchanged"), 303)


@bp.route("/settings/brand", methods=["POST"])
@requires(roles.SETTINGS)
def settings_brand() -> ResponseReturnValue:
    merchant_id = _merchant_id()
    merchant_or_404(merchant_id, roles.SETTINGS)
    form = _brand_form()
    try:
        if request.form.get("preview"):
            ms.check_brand(db.session(), merchant_id, form)
            return _page(merchant_id, brand=form, part="brand", preview=form.accent.strip())
        with db.transaction() as session:
            changes = ms.save_brand(session, merchant_id, form, actor=_actor())
    except ms.Invalid as exc:
        return _page(merchant_id, status=422, brand=form, errors=exc.errors, part="brand")
    return _done(merchant_id, changes, "brand")


@bp.route("/settings/developer", methods=["POST"])
@requires(roles.DEVELOPER)
def settings_developer() -> ResponseReturnValue:
    merchant_id = _merchant_id()
    merchant_or_404(merchant_id, roles.DEVELOPER)
    form = ms.DeveloperForm(webhook_url=request.form.get("webhook_url", ""),
                            return_hosts=request.form.get("return_hosts", ""),
                            frame_origins=request.form.get("frame_origins", ""))
    try:
        with db.transaction() as session:
            # Outside sandbox mode, merchant users may not point the site at hosts only
            # it can reach (its answers are shown in a payment's story).
            changes = ms.save_developer(session, merchant_id, form,
                                        request.form.get("confirm_code", ""),
                                        actor=_actor(), now=clock.now(),
                                        public_only=not _sandbox())
    except ms.Invalid as exc:
        return _page(merchant_id, status=422, developer=form, errors=exc.errors,
                     part="developer")
    return _done(merchant_id, changes, "developer")


@bp.route("/settings/secret", methods=["POST"])
@requires(roles.DEVELOPER)
def settings_secret() -> ResponseReturnValue:
    """Sandbox mode: a random secret, in this one answer only (not a redirect: nothing keeps
    it). Otherwise the secret the processor issued, typed in and never shown back."""
    merchant_id = _merchant_id()
    merchant_or_404(merchant_id, roles.DEVELOPER)
    issued = None if _sandbox() else request.form.get(ms.SECRET_FIELD, "")
    try:
        with db.transaction() as session:
            secret = ms.replace_secret(session, merchant_id,
                                       request.form.get("confirm_code", ""),
                                       actor=_actor(), now=clock.now(), issued=issued)
    except ms.Invalid as exc:
        return _page(merchant_id, status=422, errors=exc.errors, part="secret")
    ms.after_secret_replaced(db.session(), merchant_id)
    if issued is not None:
        return _done(merchant_id, [ms.API_SECRET], "secret")
    return _page(merchant_id, secret=secret, part="secret")


def _policy_currencies(current: ms.Settings) -> list[str]:
    offered = list(ms.POLICY_CURRENCIES)
    if current.policy.policy_currency not in offered:
        offered.insert(0, current.policy.policy_currency)
    return offered


@bp.route("/settings/policies", methods=["POST"])
@requires(roles.SETTINGS)
def settings_policies() -> ResponseReturnValue:
    """Under- and late payments, the refunds' automatic approval (the code asked again when
    it changes: it lets money leave the balance without a person)."""
    merchant_id = _merchant_id()
    merchant_or_404(merchant_id, roles.SETTINGS)
    form = ms.PolicyForm(underpaid_percent=request.form.get("underpaid_percent", ""),
                         underpaid_fiat=request.form.get("underpaid_fiat", ""),
                         policy_currency=request.form.get("policy_currency", ""),
                         late_accept=request.form.get("late_accept") == "1",
                         refund_auto_below=request.form.get("refund_auto_below", ""))
    try:
        with db.transaction() as session:
            changes = ms.save_policies(session, merchant_id, form,
                                       request.form.get("confirm_code", ""),
                                       actor=_actor(), now=clock.now())
    except ms.Invalid as exc:
        return _page(merchant_id, status=422, policy=form, errors=exc.errors, part="policies")
    return _done(merchant_id, changes, "policies")


def _sandbox() -> bool:
    return bool(current_app.config["SANDBOX"])


@bp.route("/settings/preview.css")
@requires(roles.SETTINGS)
def settings_preview() -> ResponseReturnValue:
    """The preview's colours as classes (the CSP allows no inline style); computed from the
    colour asked, nothing of any merchant."""
    try:
        css = ms.preview_stylesheet(request.args.get("accent", ""))
    except branding.BrandError:
        abort(404)
    return Response(css, mimetype="text/css")
