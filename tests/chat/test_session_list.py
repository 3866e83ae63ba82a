"""GET /api/chat/sessions runs a query compiled once per shape and skips ninja's response
validation (chat/api.py). Both must give exactly what services.session_list and the schema give."""

import json
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from ninja.responses import NinjaJSONEncoder

from chat import services
from chat.api import _session_page
from chat.models import ChatSession
from chat.schemas import ChatSessionList

pytestmark = pytest.mark.django_db(transaction=True)

TITLES = ["Backups", "disk SPACE", "100% full", "under_score", r"back\slash", "Ünïcode title", "", "backups again"]
QUERIES = ["", "back", "BACK", "%", "_", "0%", r"\s", "ünï", "Ü", "space", "nothing like it", " back "]


@pytest.fixture
def sessions(owner, colleague):
    for n, title in enumerate(TITLES):
        ChatSession.objects.create(owner=owner if n % 3 else colleague, title=title)


def _expected(user, q: str, limit: int, offset: int) -> dict:
    """What the endpoint gave before: the service's rows, validated by ninja against the schema."""
    from asgiref.sync import async_to_sync

    rows, count = async_to_sync(services.session_list)(user=user, q=q, limit=limit, offset=offset)
    data = {"items": [services.session_data(row) for row in rows], "count": count}
    return json.loads(json.dumps(ChatSessionList.model_validate(data).model_dump(), cls=NinjaJSONEncoder))


@pytest.fixture(params=["owner", "colleague", "staff"])
def viewer(request, sessions):
    return request.getfixturevalue(request.param)


async def test_the_list_is_the_services_list_for_every_search_and_page(viewer, api_client):
    user = viewer
    client = await sync_to_async(api_client)(user)
    for q in QUERIES:
        for limit, offset in ((50, 0), (2, 0), (2, 2), (3, 6), (1, 100)):
            response = await client.get("/api/chat/sessions", {"q": q, "limit": limit, "offset": offset})
            assert response.status_code == 200
            expected = await sync_to_async(_expected)(user, q, limit, offset)
            assert response.json() == expected, (user.username, q, limit, offset)


async def test_a_user_sees_only_their_own_sessions_and_staff_all(sessions, api_client, owner, colleague, staff):
    seen = {}
    for user in (owner, colleague, staff):
        client = await sync_to_async(api_client)(user)
        seen[user.username] = {item["title"] for item in (await client.get("/api/chat/sessions")).json()["items"]}
    assert seen["owner"] == {title for n, title in enumerate(TITLES) if n % 3}
    assert seen["colleague"] == {title for n, title in enumerate(TITLES) if not n % 3}
    assert seen["staffer"] == set(TITLES)


async def test_the_response_is_json_with_the_api_content_type(sessions, api_client, owner):
    client = await sync_to_async(api_client)(owner)
    response = await client.get("/api/chat/sessions")
    assert response["Content-Type"] == "application/json; charset=utf-8"


@pytest.fixture
def llm_providers(settings):
    """An offline default, a remote provider with a model and one without (LLMUnavailable)."""
    from chat.llm.registry import reset_registry

    settings.CHAT_LLM_PROVIDER = "offline"
    settings.CHAT_LLM_PROVIDERS = json.dumps({
        "remote": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m1"},
        "bare": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
    })
    reset_registry()
    yield
    reset_registry()


def test_the_list_formatter_equals_session_data_for_every_field(owner, llm_providers, monkeypatch):
    """services.session_list_data (the list's formatter, from raw rows) gives what
    services.session_data gives for each session: tools chosen on, off or not chosen, with models
    that have tools, have none (offline) or cannot be resolved; with and without an operator
    terminal; generating or not."""
    import uuid

    from chat.generation import answers

    for n, (model, tools) in enumerate([(m, t) for m in ("", "remote/", "remote/m2", "bare/", "bare/x", "offline/")
                                        for t in (None, True, False)]):
        ChatSession.objects.create(owner=owner, title=f"s{n}", model=model, tools=tools,
                                   operator_terminal=uuid.uuid4() if n % 2 else None)
    # One with a date on a whole second: its text has no fraction (isoformat's rule).
    ChatSession.objects.filter(title="s0").update(updated=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    sessions = list(ChatSession.objects.order_by("-updated"))
    generating = {str(sessions[0].id), str(sessions[3].id)}
    monkeypatch.setattr(answers, "running", lambda session_id: object() if str(session_id) in generating else None)
    monkeypatch.setattr(answers, "running_ids", lambda: generating)
    rows, _count = _session_page(owner, q="", limit=50, offset=0)  # the rows the list call formats
    listed = services.session_list_data(rows)
    expected = [services.session_data(session) for session in sessions]
    assert listed == expected
    assert {item["tools"] for item in listed} == {True, False}
    assert sum(item["generating"] for item in listed) == 2
    assert json.dumps(listed) == json.dumps(expected)  # the same types too (str, not UUID)
