"""A message POST's session is read with the token or session check (chat/api.py
`MESSAGE_SESSION`, autobot/prefetch.py) by `services.session_read`, a query compiled once: it
must find exactly the session `session_get` finds, and nothing where that is a 404."""

import uuid

import pytest
from asgiref.sync import async_to_sync
from django.test import RequestFactory
from django.urls import resolve

from autobot.errors import NotFound
from chat import services
from chat.api import MESSAGE_SESSION
from chat.models import ChatSession

pytestmark = pytest.mark.django_db(transaction=True)


def _fields(session: ChatSession) -> dict:
    return {field.attname: getattr(session, field.attname) for field in ChatSession._meta.concrete_fields}


@pytest.fixture
def sessions(owner, colleague):
    plain = ChatSession.objects.create(owner=owner, title="Ünïcode ☃", model="ollama/llama3")
    chosen = ChatSession.objects.create(owner=owner, tools=False, operator_terminal=uuid.uuid4())
    theirs = ChatSession.objects.create(owner=colleague, tools=True)
    return [plain, chosen, theirs]


@pytest.mark.parametrize("viewer", ["owner", "colleague", "staff", "stranger"])
def test_session_read_finds_what_session_get_finds(request, viewer, sessions):
    user = request.getfixturevalue(viewer)
    for session in sessions:
        try:
            expected = async_to_sync(services.session_get)(user=user, session_id=session.pk)
        except NotFound:
            expected = None
        for session_id in (session.pk, str(session.pk)):
            found = services.session_read(user, session_id)
            if expected is None:
                assert found is None, (viewer, session.title)
            else:
                assert type(found) is ChatSession and _fields(found) == _fields(expected)
                assert found._state.db == expected._state.db and not found._state.adding


def test_session_read_finds_nothing_for_an_unknown_or_malformed_id(owner):
    assert services.session_read(owner, uuid.uuid4()) is None
    assert services.session_read(owner, "not-a-uuid") is None
    with pytest.raises(NotFound) as refused:
        services.session_found(None, "not-a-uuid")
    assert refused.value.code == "chat_session_not_found"


def test_the_token_check_guesses_the_session_from_the_path(owner, sessions):
    path = f"/api/chat/sessions/{sessions[0].pk}/messages"
    request = RequestFactory().post(path)
    request.resolver_match = resolve(path)
    assert MESSAGE_SESSION.guess(request) == {"session_id": sessions[0].pk}
    assert "POST" in MESSAGE_SESSION.methods and "GET" not in MESSAGE_SESSION.methods
    bad = "/api/chat/sessions/not-a-uuid/messages"
    request = RequestFactory().post(bad)
    request.resolver_match = resolve(bad)
    assert MESSAGE_SESSION.guess(request) is None  # then the view reads it itself (and 404s)
