"""Repeated failed sign-ins lock a username (and, at five times the allowance, an address) out."""

import pytest

from autobot.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _three_failures_allowed(settings):
    settings.LOGIN_MAX_FAILURES = 3
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 600


def sign_in(client, username, password, address="127.0.0.1"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_a_username_is_locked_out_after_too_many_failures_even_with_the_right_password(real_password_hasher,
                                                                                      client, owner):
    # The one test on production's hasher (the others use the suite's fast one: tests/conftest.py).
    assert owner.password.startswith("pbkdf2_sha256$")
    for _ in range(3):
        assert sign_in(client, "owner", "wrong").status_code == 200
    response = sign_in(client, "owner", PASSWORD)
    assert response.status_code == 429
    assert 590 <= int(response["Retry-After"]) <= 601
    assert b"Too many failed sign-ins. Try again in 10 minutes." in response.content
    assert "_auth_user_id" not in client.session
    throttled = AuditEvent.objects.get(action="auth.login_throttled")
    assert throttled.data == {"username": "owner"}
    # Another user on the same address is not locked out by it.
    assert sign_in(client, "colleague-who-does-not-exist", "wrong").status_code == 200


def test_the_username_is_matched_whatever_its_case(client, owner):
    for name in ("owner", "OWNER", " Owner "):
        sign_in(client, name, "wrong")
    assert sign_in(client, "owner", PASSWORD).status_code == 429


def test_a_full_width_spelling_of_a_locked_out_name_is_locked_out_too(client, django_user_model):
    # The sign-in form normalises usernames (NFKC): 'ｅｖｅ' signs in as 'eve', so it counts as 'eve'.
    django_user_model.objects.create_user("eve", password=PASSWORD)
    for _ in range(3):
        sign_in(client, "eve", "wrong")
    assert sign_in(client, "\uff45\uff56\uff45", PASSWORD).status_code == 429
    assert sign_in(client, "\uff25VE", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_successful_sign_in_clears_the_count(client, owner):
    for _ in range(2):
        sign_in(client, "owner", "wrong")
    assert sign_in(client, "owner", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(2):
        assert sign_in(client, "owner", "wrong").status_code == 200
    assert sign_in(client, "owner", PASSWORD).status_code == 302


def test_an_address_trying_many_usernames_is_locked_out_at_five_times_the_allowance(client, owner):
    for n in range(15):
        assert sign_in(client, f"guess{n}", "wrong", address="192.0.2.7").status_code == 200
    assert sign_in(client, "owner", PASSWORD, address="192.0.2.7").status_code == 429
    assert sign_in(client, "owner", PASSWORD, address="192.0.2.8").status_code == 302
