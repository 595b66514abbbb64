"""The settings and team services on their own: errors per field, all or nothing, audit
entries that name what changed and never a secret, the last owner kept."""

from __future__ import annotations

import pytest
from flask import Flask
from kit.console import add_person
from sqlalchemy import select

from checkout import audit, branding, clock, db, totp
from checkout.models import AuditEntry, Merchant
from checkout.services import merchant_settings as ms
from checkout.services import team


@pytest.fixture
def actor(app: Flask, merchant: Merchant) -> ms.Actor:
    person = add_person(app, "admin@shop.example", roles={merchant.client_id: "admin"})
    return ms.Actor(person.id, person.email, "192.0.2.1")


def test_every_bad_field_is_named_at_once_and_nothing_changes(app: Flask,
                                                              actor: ms.Actor) -> None:
    form = ms.BrandForm(name=" ", display_name="x" * 101, accent="blue", language="xx",
                        instructions={"default": "y" * 301, "de": "ok", "qq": "z"})
    with app.app_context(), pytest.raises(ms.Invalid) as caught, \
            db.transaction() as session:
        ms.save_brand(session, 11, form, actor=actor)
    assert set(caught.value.errors) == {"name", "display_name", "accent", "language",
                                        "instructions-default", "instructions-qq"}
    with app.app_context():
        stored = db.session().get(Merchant, 11)
        assert stored is not None and stored.name == "Shop" and stored.instructions == {}
        assert db.session().scalars(select(AuditEntry)).all() == []


def test_the_default_instructions_can_be_removed_alone(app: Flask, actor: ms.Actor) -> None:
    with app.app_context(), db.transaction() as session:
        ms.save_brand(session, 11, ms.BrandForm(
            name="Shop", instructions={"default": "Any", "de": "Deutsch"}), actor=actor)
    with app.app_context(), db.transaction() as session:
        changes = ms.save_brand(session, 11, ms.BrandForm(
            name="Shop", instructions={"default": "", "de": "Deutsch"}), actor=actor)
    assert changes == ["instructions: de"]
    with app.app_context():
        assert db.session().get(Merchant, 11).instructions == {  # type: ignore[union-attr]
            "de": "Deutsch"}


def test_the_preview_colours_reach_aa_on_the_pages_cards() -> None:
    for swatch in ms.swatches("#ffee00"):
        assert swatch.on_card >= branding.AA and swatch.text_on_accent >= branding.AA
    assert ".preview-dark{" in ms.preview_stylesheet("#08f")
    with pytest.raises(branding.BrandError):
        ms.preview_stylesheet("#08f;}*{x:y")


def test_a_replaced_secret_is_audited_without_its_value(app: Flask, merchant: Merchant) -> None:
    person = add_person(app, "dev@shop.example", roles={11: "developer"})
    actor = ms.Actor(person.id, person.email)
    with app.app_context(), db.transaction() as session:
        code = totp.code_at(person.secret, clock.now())
        secret = ms.replace_secret(session, 11, code, actor=actor, now=clock.now())
    with app.app_context():
        [entry] = db.session().scalars(select(AuditEntry)).all()
        assert audit.detail(entry) == {"fields": ["api_secret"]}
        assert secret not in entry.detail_json and entry.user_id == person.id


def test_the_last_owner_is_neither_removed_nor_demoted(app: Flask, merchant: Merchant) -> None:
    owner = add_person(app, "owner@shop.example", roles={11: "owner"})
    actor = ms.Actor(owner.id, owner.email)
    for act in (lambda s: team.remove(s, 11, owner.id, "000000", actor=actor,
                                      now=clock.now()),
                lambda s: team.change_role(s, 11, owner.id, "viewer", "000000", actor=actor,
                                           now=clock.now())):
        with app.app_context(), pytest.raises(ms.Invalid) as caught, \
                db.transaction() as session:
            act(session)
        assert caught.value.errors == {"": "last owner"}
    with app.app_context():
        assert [m.role for m in team.members(db.session(), 11)] == ["owner"]
