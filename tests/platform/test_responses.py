"""autobot/responses.py: json_datetime writes a datetime exactly as the API's JSON encoder does; the
API's responses (new_response, FastHeaders) are Django's."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from ninja.responses import NinjaJSONEncoder

from autobot.responses import json_datetime

ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)), None]
MICROSECONDS = [0, 1, 999, 1000, 123456, 999999]


def test_json_datetime_is_the_encoders_text():
    for zone in ZONES:
        for microsecond in MICROSECONDS:
            for second in (0, 59):
                value = datetime(2026, 12, 5, 8, 9, second, microsecond, tzinfo=zone)
                assert json.dumps(json_datetime(value)) == json.dumps(value, cls=NinjaJSONEncoder), value


def test_fast_headers_answer_as_django_s_response_headers():
    from django.http import HttpResponse
    from django.http.response import ResponseHeaders

    from autobot.responses import FastHeaders, fast_headers

    django_s = HttpResponse(b"{}", content_type="application/json")
    django_s["X-Request-ID"] = "abc"
    ours = fast_headers(HttpResponse(b"{}", content_type="application/json"))
    ours["X-Request-ID"] = "abc"
    assert type(ours.headers) is FastHeaders and type(django_s.headers) is ResponseHeaders
    for name in ("Content-Type", "content-type", "CONTENT-TYPE", "X-Request-ID", "x-request-id", "X-Frame-Options",
                 "Content-Length", ""):
        assert (name in ours) == (name in django_s) == (name in django_s.headers)
        assert ours.has_header(name) == django_s.has_header(name)
        assert ours.get(name) == django_s.get(name)
        assert ours.get(name, "absent") == django_s.get(name, "absent")
        assert ours.headers.get(name, "absent") == django_s.headers.get(name, "absent")
    assert list(ours.items()) == list(django_s.items()) == [("Content-Type", "application/json"),
                                                            ("X-Request-ID", "abc")]
    assert ("X-Request-ID", "abc") in ours.items() and len(ours.items()) == 2
    assert ours.headers == django_s.headers and repr(ours.headers) == repr(django_s.headers)
    ours.headers.setdefault("X-Frame-Options", "DENY")
    ours.headers.setdefault("X-Frame-Options", "SAMEORIGIN")  # already there: kept
    del ours["X-Request-ID"]
    assert list(ours.items()) == [("Content-Type", "application/json"), ("X-Frame-Options", "DENY")]


@pytest.mark.django_db(transaction=True)
async def test_an_api_response_has_fast_headers_and_every_header_it_had():
    from django.test import AsyncClient

    from autobot.responses import FastHeaders

    response = await AsyncClient().get("/api/me")
    assert response.status_code == 401
    assert type(response.headers) is FastHeaders
    assert {name.lower() for name in response.headers} == {
        "content-type", "content-length", "content-security-policy", "x-content-type-options", "referrer-policy",
        "cross-origin-opener-policy", "x-frame-options", "x-request-id"}


def test_the_response_constructors_it_stands_in_for_are_django_s_and_ninja_s_current_ones():
    from autobot.api import NINJA_CREATE_RESPONSE_SHA256, ninja_create_response_sha256
    from autobot.responses import DJANGO_RESPONSE_INIT_SHA256, django_response_init_sha256

    assert django_response_init_sha256() == DJANGO_RESPONSE_INIT_SHA256, (
        "Django's HttpResponse constructors changed: check autobot/responses.py's new_response against "
        "them, then update DJANGO_RESPONSE_INIT_SHA256")
    assert ninja_create_response_sha256() == NINJA_CREATE_RESPONSE_SHA256, (
        "ninja's create_response or create_temporal_response changed: bring autobot/api.py's in line with "
        "them, then update NINJA_CREATE_RESPONSE_SHA256")


def _same_response(ours, django_s) -> None:
    from django.http import HttpResponse

    from autobot.responses import FastHeaders

    assert type(ours) is type(django_s) is HttpResponse and type(ours.headers) is FastHeaders
    assert vars(ours).keys() == vars(django_s).keys() == {
        "headers", "_charset", "_resource_closers", "_handler_class", "cookies", "closed", "_reason_phrase",
        "_container", *(["status_code"] if "status_code" in vars(django_s) else [])}
    for name, value in vars(django_s).items():
        if name == "headers":
            assert ours.headers._store == value._store and vars(ours.headers).keys() == {"_store"}
        elif name == "cookies":
            assert dict(ours.cookies) == dict(value) == {} and type(ours.cookies) is type(value)
        else:
            assert getattr(ours, name) == value and type(getattr(ours, name)) is type(value), name
    assert (ours.status_code, ours.reason_phrase, ours.charset, ours.content, ours.text) == (
        django_s.status_code, django_s.reason_phrase, django_s.charset, django_s.content, django_s.text)
    assert ours.serialize() == django_s.serialize()


def test_a_new_response_is_django_s_with_parts_of_its_own():
    from django.http import HttpResponse

    from autobot.responses import new_response

    content_type = "application/json; charset=utf-8"
    for content, status in ((b"", None), (b'{"items":[]}', 200), (b'{"detail":"x","code":"y"}', 404),
                            (b"{}", 201), ("text", None), (b"{}", 600)):
        def django_s(content=content, status=status):
            return HttpResponse(content, content_type=content_type, status=status)

        if status == 600:
            with pytest.raises(ValueError):
                new_response(content, content_type, status)
            continue
        first, second = new_response(content, content_type, status), new_response(content, content_type, status)
        _same_response(first, django_s())
        for part in ("headers", "cookies", "_resource_closers", "_container"):  # fresh every time
            assert getattr(first, part) is not getattr(second, part)
        first["X-Request-ID"] = "abc"
        first.set_cookie("a", "b")
        first.write(b"more")
        first._resource_closers.append(print)
        _same_response(second, django_s())  # untouched by the first's changes
        _same_response(new_response(content, content_type, status), django_s())


@pytest.mark.django_db(transaction=True)
async def test_an_api_call_s_response_is_as_before(api_client, owner):
    response = await api_client(owner).get("/api/chat/sessions")
    assert response.status_code == 200 and response.json() == {"items": [], "count": 0}
    assert response["Content-Type"] == "application/json; charset=utf-8"
    missing = await api_client(owner).get("/api/chat/sessions/12345678-1234-5678-1234-567812345678")
    assert missing.status_code == 404 and missing.json()["code"] == "chat_session_not_found"
