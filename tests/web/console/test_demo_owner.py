"""`make run` (the demo command) tells how to sign in as the demo merchant's owner: an
enrolment link until they have enrolled, never a password; then where to sign in."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskCliRunner
from kit.console import PASSWORD, Clock, enrol

from checkout import demo

LINK = re.compile(r"http://demo\.example(/console/enrol/[A-Za-z0-9_-]+)")


def _run(runner: FlaskCliRunner) -> str:
    result = runner.invoke(args=["demo", "--base-url", "http://demo.example"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_demo_prints_a_link_to_enrol_the_owner_then_where_to_sign_in(
        app: Flask, runner: FlaskCliRunner) -> None:
    Clock(app)
    first = _run(runner)
    assert demo.DEMO_OWNER in first and PASSWORD not in first
    links = LINK.findall(first)
    assert len(links) == 1
    again = LINK.findall(_run(runner))  # not enrolled yet: a fresh link
    assert len(again) == 1 and again != links
    enrol(app, app.test_client(), again[0])
    after = _run(runner)
    assert not LINK.search(after)
    assert "http://demo.example/console/login" in after
    assert "owner" in runner.invoke(args=["user", "list"]).output
