"""The session engine (autobot/sessions.py): Django's database sessions read with hand-written
SQL, and the session's user read the same way. Same table and format as Django's engine, same
expiry, key cycling at login, flush at logout, and the same checks on the user."""

from datetime import timedelta

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.utils import timezone

from autobot.sessions import SessionStore, session_user
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

PAGE = "/chat/"


def _signed_in_session(user, store=SessionStore) -> str:
    session = store()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def _user_of(session_key: str):
    request = RequestFactory().get(PAGE)
    request.session = SessionStore(session_key)
    return session_user(request)


def test_it_is_the_configured_engine(settings):
    assert settings.SESSION_ENGINE == "autobot.sessions"


def test_a_session_written_by_djangos_engine_reads_in_ours_and_back():
    theirs = DjangoSessionStore()
    theirs["colour"] = "green"
    theirs.create()
    ours = SessionStore(theirs.session_key)
    assert ours["colour"] == "green"
    ours["size"] = 3
    ours.save()
    assert dict(DjangoSessionStore(theirs.session_key).load()) == {"colour": "green", "size": 3}


def test_an_unknown_or_malformed_key_reads_as_an_empty_session_without_a_key():
    for key in ("x" * 32, "short", ""):
        session = SessionStore(key)
        assert dict(session.items()) == {}
        assert session.session_key is None


def test_an_expired_session_reads_as_empty_and_a_save_makes_a_new_key(owner):
    key = _signed_in_session(owner)
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    session = SessionStore(key)
    assert session.get(SESSION_KEY) is None
    session["again"] = True
    session.save()
    assert session.session_key != key
    assert _user_of(key).is_anonymous


def test_an_expired_session_is_sent_to_the_login_page(client, owner):
    key = _signed_in_session(owner)
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    client.cookies["sessionid"] = key
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"] == f"/accounts/login/?next={PAGE}"


def test_the_session_user_is_the_signed_in_user(owner):
    user = _user_of(_signed_in_session(owner))
    assert user.pk == owner.pk and user.username == "owner" and user.is_authenticated
    assert user.date_joined == owner.date_joined  # converted as the ORM would (SQLite keeps text)


def test_a_session_from_djangos_engine_signs_the_user_in_on_a_page(client, owner):
    client.cookies["sessionid"] = _signed_in_session(owner, store=DjangoSessionStore)
    assert client.get(PAGE).status_code == 200


def test_a_deactivated_user_is_signed_out_on_the_next_request(client, owner):
    client.cookies["sessionid"] = _signed_in_session(owner)
    assert client.get(PAGE).status_code == 200
    type(owner).objects.filter(pk=owner.pk).update(is_active=False)
    assert client.get(PAGE).status_code == 302


def test_a_deleted_user_reads_as_anonymous(owner):
    key = _signed_in_session(owner)
    owner.delete()
    assert _user_of(key).is_anonymous


def test_a_password_change_signs_other_sessions_out_and_flushes_them(client, owner):
    key = _signed_in_session(owner)
    owner.set_password("a-new-password-456")
    owner.save()
    assert _user_of(key).is_anonymous
    assert not Session.objects.filter(session_key=key).exists()  # flushed, as Django does
    client.cookies["sessionid"] = _signed_in_session(owner)  # made after the change: fine
    assert client.get(PAGE).status_code == 200


def test_the_remembered_session_hash_follows_the_password(owner):
    key = _signed_in_session(owner)
    for _ in range(2):  # the second read takes the remembered hash
        assert _user_of(key).pk == owner.pk
    owner.set_password("a-new-password-456")
    owner.save()
    assert _user_of(key).is_anonymous
    assert not Session.objects.filter(session_key=key).exists()  # flushed, as Django does
    renewed = _signed_in_session(owner)  # made after the change
    assert _user_of(renewed).pk == owner.pk


def test_a_session_signed_with_a_fallback_secret_is_kept_with_a_new_key(settings, owner):
    settings.SECRET_KEY = "the-old-secret-key-of-this-test-0123456789-abcdefghijklmnop"
    key = _signed_in_session(owner)  # signed, and its password hash made, with the old key
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-secret-key-of-this-test-0123456789-abcdefghijklmnop"
    request = RequestFactory().get(PAGE)
    request.session = SessionStore(key)
    user = session_user(request)
    assert user.pk == owner.pk
    assert request.session.session_key != key  # cycled
    assert request.session[HASH_SESSION_KEY] == owner.get_session_auth_hash()  # renewed with the new key


def test_a_session_naming_a_backend_no_longer_configured_is_anonymous(owner):
    session = SessionStore()
    session.update({SESSION_KEY: str(owner.pk), BACKEND_SESSION_KEY: "some.removed.Backend",
                    HASH_SESSION_KEY: owner.get_session_auth_hash()})
    session.create()
    assert _user_of(session.session_key).is_anonymous


def test_login_cycles_the_key_and_the_old_one_no_longer_signs_in(client, owner):
    session = client.session  # an anonymous session before signing in (the client sets its cookie)
    session["visited"] = True
    session.save()
    before = client.cookies["sessionid"].value
    response = client.post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    assert response.status_code == 302
    after = client.cookies["sessionid"].value
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()
    assert client.get(PAGE).status_code == 200


def test_logout_flushes_the_session(client, owner):
    client.post("/accounts/login/", {"username": "owner", "password": PASSWORD})
    key = client.cookies["sessionid"].value
    assert client.get(PAGE).status_code == 200
    client.post("/accounts/logout/")
    assert not Session.objects.filter(session_key=key).exists()
    client.cookies["sessionid"] = key  # the old cookie, replayed
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# ---- what `decode` remembers -------------------------------------------------------------------


def test_a_remembered_session_reads_the_same_and_each_read_is_its_own_copy(owner):
    key = _signed_in_session(owner)
    first = SessionStore(key)
    first["colour"] = "green"
    first.save()
    one, two = SessionStore(key).load(), SessionStore(key).load()
    assert one == two == dict(DjangoSessionStore(key).load())
    one["colour"] = "red"  # a request changing its session changes nothing another one reads
    assert SessionStore(key).load()["colour"] == "green"


def test_a_changed_row_reads_anew(owner):
    key = _signed_in_session(owner)
    assert "size" not in SessionStore(key).load()
    session = SessionStore(key)
    session["size"] = 3
    session.save()
    assert SessionStore(key).load()["size"] == 3


def test_a_secret_no_longer_configured_no_longer_reads_what_it_signed(settings, owner):
    key = _signed_in_session(owner)
    assert SessionStore(key).load()[SESSION_KEY] == str(owner.pk)  # read, and remembered
    settings.SECRET_KEY = "another-secret-" + "x" * 50
    assert SessionStore(key).load() == {}
    assert _user_of(key).is_anonymous


def test_a_corrupted_row_reads_empty_every_time(owner):
    key = _signed_in_session(owner)
    Session.objects.filter(session_key=key).update(session_data="not-signed:at-all")
    for _ in range(2):
        assert SessionStore(key).load() == {}


def test_a_session_holding_lists_or_dicts_reads_right_and_is_not_shared(owner):
    key = _signed_in_session(owner)
    session = SessionStore(key)
    session["recent"] = [1, 2]
    session.save()
    one = SessionStore(key).load()
    one["recent"].append(3)
    assert SessionStore(key).load()["recent"] == [1, 2]


def _fields(user) -> list:
    return [(field.attname, getattr(user, field.attname)) for field in type(user)._meta.concrete_fields]


@pytest.mark.parametrize("signed_in_before", [True, False])
def test_the_user_read_twice_has_the_orms_values_and_types(owner, signed_in_before):
    """The second read takes the converted values kept for the same row: equal to the ORM's, types
    and time zones included, and a user object of its own each time (a NULL date too)."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk=owner.pk).update(last_login=timezone.now() if signed_in_before else None)
    key = _signed_in_session(owner)
    first, second = _user_of(key), _user_of(key)
    orm = get_user_model().objects.get(pk=owner.pk)
    for user in (first, second):
        assert [(name, value, type(value)) for name, value in _fields(user)] == [
            (name, value, type(value)) for name, value in _fields(orm)]
        if signed_in_before:
            assert user.last_login.tzinfo == orm.last_login.tzinfo and user.last_login.tzinfo is not None
        else:
            assert user.last_login is None
    assert first is not second
    first.first_name = "changed"
    assert _user_of(key).first_name == orm.first_name


def test_a_changed_user_row_reads_anew(owner):
    """A row that changed (staff granted, a name, a sign-in time) is converted afresh."""
    from django.contrib.auth import get_user_model

    key = _signed_in_session(owner)
    assert not _user_of(key).is_staff
    later = timezone.now() + timedelta(minutes=5)
    get_user_model().objects.filter(pk=owner.pk).update(is_staff=True, first_name="Ada", last_login=later)
    user = _user_of(key)
    assert user.is_staff is True and user.first_name == "Ada" and user.last_login == later


def test_the_expiry_check_s_time_is_django_s_text_of_now(settings):
    """`_now_param`: the text Django's SQLite operations make of `timezone.now()` (to the second
    here: the two are read a moment apart), and Django's own value elsewhere."""
    from datetime import datetime as dt

    from django.db import connection

    from autobot.sessions import _now_param

    before = connection.ops.adapt_datetimefield_value(timezone.now())
    ours = _now_param(connection)
    after = connection.ops.adapt_datetimefield_value(timezone.now())
    assert type(ours) is type(before) and before <= ours <= after
    if connection.vendor == "sqlite":
        assert dt.fromisoformat(ours).tzinfo is None and len(ours) in (19, 26)
        settings.USE_TZ = False
        assert abs(dt.fromisoformat(_now_param(connection)) - dt.now()).total_seconds() < 5
