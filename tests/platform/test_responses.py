"""autobot.responses.json_datetime writes a datetime exactly as the API's JSON encoder does."""

import json
from datetime import UTC, datetime, timedelta, timezone

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


async def test_an_api_response_has_fast_headers_and_every_header_it_had():
    from django.test import AsyncClient

    from autobot.responses import FastHeaders

    response = await AsyncClient().get("/api/me")
    assert response.status_code == 401
    assert type(response.headers) is FastHeaders
    assert {name.lower() for name in response.headers} == {
        "content-type", "content-length", "content-security-policy", "x-content-type-options", "referrer-policy",
        "cross-origin-opener-policy", "x-frame-options", "x-request-id"}
