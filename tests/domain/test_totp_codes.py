"""A code typed in another script's digits is a wrong code, never an error: str.isdigit calls
"١٢٣٤٥٦" digits, and comparing it in constant time raised, answering 500 at sign-in and at
every code asked again."""

from __future__ import annotations

import pytest

from checkout import clock, totp


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "۱۲۳۴۵۶", "１２３４５６", "12345６"])
def test_digits_of_other_scripts_are_no_code(code: str) -> None:
    secret = totp.new_secret()
    assert totp.accepted_step(secret, code, clock.system_now(), None) is None


def test_the_right_code_is_still_accepted() -> None:
    secret = totp.new_secret()
    now = clock.system_now()
    assert totp.accepted_step(secret, totp.code_at(secret, now), now, None) is not None
