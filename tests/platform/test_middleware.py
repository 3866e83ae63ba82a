"""autobot/middleware.py: Django's middleware made async-native keeps Django's behaviour.

The session, messages, CSRF, security and common middleware run inline on the event loop (no
thread hop per request); the session and messages go to a thread only to write. These tests go
through the real MIDDLEWARE setting with async views, as the API and pages do."""

import pytest
from django.contrib.sessions.models import Session
from django.core.checks import Error
from django.test import AsyncClient

from autobot.middleware import check_memory_only_settings

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _async_test_views(settings):
    settings.ROOT_URLCONF = "tests.platform.middleware_urls"


async def test_a_session_written_by_an_async_view_is_saved_and_read_back(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    response = await client.get("/test-mw/remember", {"colour": "teal"})
    assert response.status_code == 200
    key = client.cookies["sessionid"].value
    stored = await Session.objects.aget(session_key=key)
    assert stored.get_decoded()["colour"] == "teal"
    response = await client.get("/test-mw/recall")
    assert response.json() == {"colour": "teal"}


async def test_an_anonymous_visitors_session_is_created_when_written():
    client = AsyncClient()
    await client.get("/test-mw/remember", {"colour": "plum"})
    assert await Session.objects.acount() == 1
    assert (await client.get("/test-mw/recall")).json() == {"colour": "plum"}


async def test_messages_reach_the_next_request_even_when_they_overflow_into_the_session(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    await client.get("/test-mw/notify", {"text": "saved"})
    long_text = "x" * 5000  # beyond the cookie's room: the rest goes to the session (a database write)
    await client.get("/test-mw/notify", {"text": long_text})
    response = await client.get("/test-mw/inbox")
    assert response.json() == {"messages": ["saved", long_text]}
    assert (await client.get("/test-mw/inbox")).json() == {"messages": []}  # shown once


async def test_api_calls_get_no_message_storage_and_leave_waiting_messages_for_the_next_page(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    await client.get("/test-mw/notify", {"text": "saved"})
    response = await client.get("/api/test-mw/probe")
    assert response.json() == {"message_storage": False}
    assert (await client.get("/api/chat/sessions")).status_code == 200
    assert (await client.get("/test-mw/inbox")).json() == {"messages": ["saved"]}


async def test_a_page_post_without_the_csrf_token_is_refused_and_with_it_accepted(owner):
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(owner)
    refused = await client.post("/test-mw/form", {"x": "1"})
    assert refused.status_code == 403
    await client.get("/")  # the dashboard sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = await client.post("/test-mw/form", {"x": "1", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 200
    assert accepted.content == b"posted POST"


async def test_a_wrong_method_on_the_api_is_a_405_in_the_json_error_shape_with_allow(api_client, owner):
    response = await api_client(owner).delete("/api/health")
    assert response.status_code == 405
    assert response.json() == {"detail": response.json()["detail"], "code": "method_not_allowed"}
    assert "GET" in response["Allow"]


async def test_a_foreign_host_header_on_the_api_is_a_400_in_the_json_error_shape():
    response = await AsyncClient().get("/api/health", headers={"host": "evil.example"})
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert response.json()["detail"]


async def test_pages_get_the_security_headers():
    response = await AsyncClient().get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_system_check_refuses_csrf_tokens_in_the_session(settings):
    assert check_memory_only_settings(None) == []
    settings.CSRF_USE_SESSIONS = True
    errors = check_memory_only_settings(None)
    assert [error.id for error in errors] == ["autobot.E001"]
    assert isinstance(errors[0], Error) and "CSRF_USE_SESSIONS" in errors[0].msg
