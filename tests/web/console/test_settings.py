"""A merchant's settings in the back office: the `merchant edit` command's own checks (a bad
value is refused by both, in the same words, and nothing changes), the code asked again for
the webhook URL, hosts, origins and the API secret, the secret shown once, every change
audited."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from kit.console import Clock, Person, add_person, sign_in
from markupsafe import escape
from PIL import Image
from sqlalchemy import select

from checkout import audit, db, merchants
from checkout.models import AuditEntry, Merchant

URL = "/console/settings?merchant=11"
BRAND = "/console/settings/brand?merchant=11"
DEVELOPER = "/console/settings/developer?merchant=11"
SECRET = "/console/settings/secret?merchant=11"


def stored(app: Flask) -> dict[str, Any]:
    with app.app_context():
        m = db.session().get(Merchant, 11)
        assert m is not None
        logo = m.logo
        row = {c.name: getattr(m, c.name) for c in Merchant.__table__.columns
               if c.name != "created_at"}
        row["logo"] = logo.digest if logo is not None else None
        db.session().rollback()
        return row


def audit_entries(app: Flask) -> list[tuple[str, dict[str, Any]]]:
    with app.app_context():
        # The entries of settings changes (signing in is audited too, and not counted here).
        rows = db.session().scalars(select(AuditEntry).where(AuditEntry.action.like("settings.%"))
                                    .order_by(AuditEntry.id)).all()
        return [(r.action, audit.detail(r)) for r in rows]


def brand_form(token: str, **changes: str) -> dict[str, Any]:
    form = {"csrf_token": token, "name": "Shop", "display_name": "", "accent": "",
            "language": "en", "instructions-default": ""}
    form.update(changes)
    return form


def developer_form(token: str, code: str = "000000", **changes: str) -> dict[str, Any]:
    form = {"csrf_token": token, "webhook_url": "https://shop.example/coinspaid/callback",
            "return_hosts": "shop.example", "frame_origins": "https://shop.example",
            "confirm_code": code}
    form.update(changes)
    return form


# The same bad value given to `merchant edit` and to the form: (command option, form, field).
BAD: list[tuple[str, str, str, str]] = [
    ("--name", "brand", "name", "   "),
    ("--display-name", "brand", "display_name", "Shop\u202eelif.exe"),
    ("--display-name", "brand", "display_name", "x" * 101),
    ("--accent", "brand", "accent", "red"),
    ("--accent", "brand", "accent", "#12345"),
    ("--accent", "brand", "accent", "#0b5cad;}body{display:none"),
    ("--language", "brand", "language", "xx"),
    ("--language", "brand", "language", "<script>"),
    ("--instructions", "brand", "instructions-default", "y" * 301),
    ("--instructions", "brand", "instructions-default", "Pay\u200b now"),
    ("--webhook-url", "developer", "webhook_url", "ftp://shop.example/hook"),
    ("--webhook-url", "developer", "webhook_url", "javascript:alert(1)"),
    ("--return-host", "developer", "return_hosts", "https://shop.example/back"),
    ("--return-host", "developer", "return_hosts", "*.shop.example"),
    ("--frame-origin", "developer", "frame_origins", "https://a.example, https://b.example"),
    ("--frame-origin", "developer", "frame_origins", "https://shop.example/path"),
    ("--frame-origin", "developer", "frame_origins", "*"),
    ("--frame-origin", "developer", "frame_origins", "https://x.example'; script-src *"),
]


@pytest.mark.parametrize(("option", "form", "field", "value"), BAD)
def test_a_bad_value_is_refused_by_the_command_and_the_form_alike(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, signed_in: str, option: str,
        form: str, field: str, value: str) -> None:
    before = stored(app)
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11", option, value])
    assert result.exit_code != 0
    message = result.output.strip().removeprefix("Error: ")
    data = (brand_form(signed_in, **{field: value}) if form == "brand"
            else developer_form(signed_in, **{field: value}))
    answer = client.post(BRAND if form == "brand" else DEVELOPER, data=data)
    assert answer.status_code == 422
    # The command's own words, under the field.
    assert str(escape(message)) in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert stored(app) == before
    assert audit_entries(app) == []


def test_a_logo_that_is_no_picture_is_refused_by_both(app: Flask, client: FlaskClient,
                                                      runner: FlaskCliRunner, signed_in: str,
                                                      tmp_path: Path) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    (tmp_path / "logo.png").write_bytes(svg)
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11", "--logo",
                                 str(tmp_path / "logo.png")])
    message = result.output.strip().removeprefix("Error: ")
    answer = client.post(BRAND, data={**brand_form(signed_in),
                                      "logo": (io.BytesIO(svg), "logo.png")},
                         content_type="multipart/form-data")
    assert answer.status_code == 422 and str(escape(message)) in answer.text
    assert stored(app)["logo"] is None


def _png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), colour).save(out, "PNG")
    return out.getvalue()


def test_branding_is_saved_at_once_audited_and_a_repeat_changes_nothing(
        app: Flask, client: FlaskClient, signed_in: str) -> None:
    data = brand_form(signed_in, name="Shop Two", display_name="The Shop", accent="#08f",
                      language="de", **{"instructions-default": "Pay within 15 minutes.",
                                        "instructions-de": "Bitte in 15 Minuten zahlen."})
    answer = client.post(BRAND, data={**data, "logo": (io.BytesIO(_png("red")), "l.png")},
                         content_type="multipart/form-data")
    assert answer.status_code == 303
    row = stored(app)
    assert (row["name"], row["display_name"], row["accent"], row["language"]) == (
        "Shop Two", "The Shop", "#0088ff", "de")
    assert row["logo"] is not None
    with app.app_context():
        texts = db.session().get(Merchant, 11).instructions  # type: ignore[union-attr]
    assert texts == {"default": "Pay within 15 minutes.", "de": "Bitte in 15 Minuten zahlen."}
    [(action, detail)] = audit_entries(app)
    assert action == "settings.brand"
    assert set(detail["fields"]) == {"name", "display_name", "accent", "language", "logo",
                                     "instructions"}
    page = client.get(answer.headers["Location"])
    assert "Saved" in page.text and "The Shop" in page.text
    # The same form again (a double click): nothing more changes, nothing more is recorded.
    again = client.post(BRAND, data=data)
    assert again.status_code == 303 and "done=unchanged" in again.headers["Location"]
    assert len(audit_entries(app)) == 1
    # Emptied fields remove what they held.
    client.post(BRAND, data=brand_form(signed_in, name="Shop Two", language="de",
                                       remove_logo="1"))
    row = stored(app)
    assert (row["display_name"], row["accent"], row["logo"]) == (None, None, None)
    assert row["instructions_json"] == "{}"


def test_preview_shows_the_accent_as_pages_would_and_saves_nothing(
        app: Flask, client: FlaskClient, signed_in: str) -> None:
    before = stored(app)
    answer = client.post(BRAND, data=brand_form(signed_in, accent="#ffee00", preview="1"))
    assert answer.status_code == 200
    assert stored(app) == before
    # Yellow is too light on white: the light page shows it darker, readable.
    css_url = "/console/settings/preview.css?accent=%23ffee00"
    assert css_url in answer.text
    css = client.get(css_url)
    assert css.status_code == 200 and css.mimetype == "text/css"
    from checkout import branding
    light = branding.palette("#ffee00")["light"].accent
    assert light != "#ffee00" and f"--preview-accent:{light}" in css.text
    assert "4.5:1" in answer.text  # the bar the table shows against
    assert client.get("/console/settings/preview.css?accent=red;}").status_code == 404


def test_developer_settings_need_the_code_again(app: Flask, client: FlaskClient,
                                                owner: Person, signed_in: str,
                                                tick: Clock) -> None:
    before = stored(app)
    data = developer_form(signed_in, webhook_url="https://shop.example/new-hook",
                          return_hosts="shop.example\nshop2.example",
                          frame_origins="")
    wrong = client.post(DEVELOPER, data={**data, "confirm_code": "123456"})
    assert wrong.status_code == 422 and "That code is not right" in wrong.text
    assert "shop2.example" in wrong.text  # what was typed is kept
    assert stored(app) == before and audit_entries(app) == []
    right = client.post(DEVELOPER, data={**data, "confirm_code": tick.code(owner)})
    assert right.status_code == 303
    row = stored(app)
    assert row["webhook_url"] == "https://shop.example/new-hook"
    assert row["return_hosts_json"] == '["shop.example", "shop2.example"]'
    assert row["frame_origins_json"] == "[]"
    [(action, detail)] = audit_entries(app)
    assert action == "settings.developer"
    assert set(detail["fields"]) == {"webhook_url", "return_hosts", "frame_origins"}
    # Sent again with the same code: nothing left to change, nothing recorded.
    assert client.post(DEVELOPER, data={**data, "confirm_code": "x"}).status_code == 303
    assert len(audit_entries(app)) == 1


def test_the_secret_is_replaced_shown_once_and_never_again(
        app: Flask, client: FlaskClient, owner: Person, signed_in: str, tick: Clock,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    old = stored(app)["api_secret"]
    assert old not in client.get(URL).text
    wrong = client.post(SECRET, data={"csrf_token": signed_in, "confirm_code": "000000"})
    assert wrong.status_code == 422 and stored(app)["api_secret"] == old
    code = tick.code(owner)
    answer = client.post(SECRET, data={"csrf_token": signed_in, "confirm_code": code})
    new = stored(app)["api_secret"]
    assert answer.status_code == 200 and new != old and len(new) >= 32
    assert new in answer.text and old not in answer.text
    assert "Update your shop" in answer.text
    # The same code again (a double submit) replaces nothing.
    again = client.post(SECRET, data={"csrf_token": signed_in, "confirm_code": code})
    assert again.status_code == 422 and stored(app)["api_secret"] == new
    assert new not in again.text
    assert new not in client.get(URL).text
    entries = audit_entries(app)
    assert [a for a, _ in entries] == ["settings.secret"]
    assert new not in repr(entries) and old not in repr(entries)
    assert new not in caplog.text and old not in caplog.text
    # The embedded processor's account follows: a link signed with the new secret works.
    from checkout.sandbox import store
    with app.app_context(), store.transaction(app) as s:
        account = s.get(store.Account, 11)
        assert account is not None and account.api_secret == new


def test_a_post_without_the_form_token_changes_nothing(app: Flask, client: FlaskClient,
                                                      signed_in: str) -> None:
    before = stored(app)
    data = brand_form(signed_in, name="Hijacked")
    del data["csrf_token"]
    assert client.post(BRAND, data=data).status_code == 400
    assert client.post(BRAND, data={**data, "csrf_token": "0" * 64}).status_code == 400
    assert stored(app) == before


def test_hostile_text_is_stored_as_text_and_shown_escaped(app: Flask, client: FlaskClient,
                                                         signed_in: str) -> None:
    name = '<script>alert("x")</script>'
    assert client.post(BRAND, data=brand_form(signed_in, name=name)).status_code == 303
    page = client.get(URL).text
    assert name not in page and "&lt;script&gt;" in page


def test_a_developer_field_needs_the_developer_capability(app: Flask, client: FlaskClient,
                                                         merchant: Merchant,
                                                         tick: Clock) -> None:
    admin = add_person(app, "admin@shop.example", roles={11: "admin"})
    token = sign_in(app, client, admin)
    page = client.get(URL)
    assert "webhook_url" in page.text  # admins hold DEVELOPER too
    support = add_person(app, "support@shop.example", roles={11: "support"})
    other = app.test_client()
    token = sign_in(app, other, support)
    assert other.get(URL).status_code == 403
    assert other.post(DEVELOPER, data=developer_form(token)).status_code == 403


def test_a_user_of_another_merchant_gets_not_found(app: Flask, client: FlaskClient,
                                                  merchant: Merchant, tick: Clock,
                                                  make_merchant: Callable[[int], None]
                                                  ) -> None:
    make_merchant(22)
    stranger = add_person(app, "owner@other.example", roles={22: "owner"})
    token = sign_in(app, client, stranger)
    before = stored(app)
    assert client.get(URL).status_code == 404
    assert client.post(BRAND, data=brand_form(token, name="Mine")).status_code == 404
    assert client.post(SECRET, data={"csrf_token": token,
                                     "confirm_code": tick.code(stranger)}
                       ).status_code == 404
    assert stored(app) == before
    assert "shop.example" not in client.get("/console/settings").text


@pytest.fixture
def make_merchant(app: Flask) -> Callable[[int], None]:
    def make(client_id: int) -> None:
        with app.app_context():
            merchants.add(merchants.NewMerchant(client_id, f"Other {client_id}",
                                                f"key-{client_id}", f"secret-{client_id}",
                                                ("other.example",)))
    return make


def test_outside_sandbox_mode_the_secret_is_the_one_the_processor_issued(
        make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture) -> None:
    """A random secret would end every payment: the processor signs with the one it issued."""
    caplog.set_level(logging.DEBUG)
    app = make_app(SANDBOX=False, PROCESSOR_URL="https://processor.example")
    tick = Clock(app)
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, "Shop", "key-11", "secret-11",
                                            ("shop.example",)))
    owner = add_person(app, "owner@shop.example", roles={11: "owner"})
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"  # the cookie is Secure here
    token = sign_in(app, client, owner)
    assert 'name="new_secret"' in client.get(URL).text
    pasted = "issued-by-the-processor-0123456789"
    bad = client.post(SECRET, data={"csrf_token": token, "new_secret": "two words",
                                    "confirm_code": tick.code(owner)})
    assert bad.status_code == 422 and "printable characters without spaces" in bad.text
    assert stored(app)["api_secret"] == "secret-11"
    answer = client.post(SECRET, data={"csrf_token": token, "new_secret": f" {pasted}\n",
                                       "confirm_code": tick.code(owner)})
    assert answer.status_code == 303 and stored(app)["api_secret"] == pasted
    assert pasted not in client.get(answer.headers["Location"]).text
    assert pasted not in repr(audit_entries(app)) and pasted not in caplog.text


def test_without_a_merchant_the_page_offers_those_one_may_set(
        app: Flask, client: FlaskClient, signed_in: str,
        make_merchant: Callable[[int], None]) -> None:
    make_merchant(22)
    # An owner of one merchant goes straight to it.
    answer = client.get("/console/settings")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("merchant=11")
    operator = add_person(app, "op@site.example", operator=True)
    other = app.test_client()
    sign_in(app, other, operator)
    page = other.get("/console/settings").text
    assert "merchant=11" in page and "merchant=22" in page
    assert other.get("/console/settings?merchant=99").status_code == 404
    assert other.get("/console/settings?merchant=11%20OR%201").status_code == 404


def test_a_developer_opens_the_settings_for_the_webhook_alone(app: Flask,
                                                              merchant: Merchant) -> None:
    developer = add_person(app, "dev@shop.example", roles={merchant.client_id: "developer"})
    client = app.test_client()
    sign_in(app, client, developer)
    page = client.get(f"/console/settings?merchant={merchant.client_id}")
    assert page.status_code == 200
    assert 'id="developer-heading"' in page.text
    assert 'id="brand-heading"' not in page.text and "settings/preview.css" not in page.text


def test_a_german_person_reads_the_field_errors_in_german_and_the_command_stays_english(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, signed_in: str) -> None:
    """The checks are the command's, their words translated on the page (?lang=de, as the
    back office carries it) while the command, with no request, still prints English."""
    before = stored(app)
    developer = client.post(DEVELOPER + "&lang=de", data=developer_form(
        signed_in, webhook_url="ftp://shop.example/hook",
        return_hosts="https://shop.example/back"))
    assert developer.status_code == 422
    assert str(escape("Die Webhook-URL 'ftp://shop.example/hook' muss eine http(s)-URL "
                      "sein")) in developer.text
    assert str(escape("Der Rücksprung-Host 'https://shop.example/back' darf nur ein "
                      "Hostname sein")) in developer.text
    assert "must be an http(s) URL" not in developer.text
    assert "must be a host name only" not in developer.text
    brand = client.post(BRAND + "&lang=de", data=brand_form(signed_in, accent="red"))
    assert brand.status_code == 422
    assert str(escape("Die Akzentfarbe 'red' muss eine Farbe wie #0b5cad sein")) in brand.text
    assert "must be a colour like" not in brand.text
    assert stored(app) == before and audit_entries(app) == []
    # The same checks from the command: English, exactly as before.
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11", "--accent", "red"])
    assert result.exit_code != 0
    assert "accent 'red' must be a colour like #0b5cad" in result.output
    result = runner.invoke(args=["merchant", "edit", "--client-id", "11",
                                 "--webhook-url", "ftp://shop.example/hook"])
    assert "webhook URL 'ftp://shop.example/hook' must be an http(s) URL" in result.output


@pytest.mark.parametrize("webhook", [
    "http://127.0.0.1:6379/", "http://localhost:8080/hook", "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/hook",
    "http://[::ffff:192.168.0.1]/hook", "http://db.internal/hook"])
def test_outside_sandbox_mode_a_webhook_may_not_name_a_private_host(
        make_app: Callable[..., Flask], webhook: str) -> None:
    """A merchant user would otherwise make the site post to services only it reaches, and
    read their answers in a payment's story."""
    app = make_app(SANDBOX=False, PROCESSOR_URL="https://processor.example")
    tick = Clock(app)
    with app.app_context():
        merchants.add(merchants.NewMerchant(11, "Shop", "key-11", "secret-11",
                                            ("shop.example",)))
    developer = add_person(app, "dev@shop.example", roles={11: "developer"})
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    token = sign_in(app, client, developer)
    refused = client.post(DEVELOPER, data=developer_form(
        token, tick.code(developer), webhook_url=webhook))
    assert refused.status_code == 422
    assert "names this machine or a private network" in refused.text
    assert stored(app)["webhook_url"] is None
    public = client.post(DEVELOPER, data=developer_form(
        token, tick.code(developer), webhook_url="https://hooks.shop.example/cp"))
    assert public.status_code == 303
    assert stored(app)["webhook_url"] == "https://hooks.shop.example/cp"
