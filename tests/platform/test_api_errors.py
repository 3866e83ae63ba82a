import pytest
from django.test import AsyncClient, Client

from tests.conftest import BearerClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_api_calls_get_401_json(api_client):
    for path in ("/api/me", "/api/tokens", "/api/terminal/sessions", "/api/files/"):
        response = await api_client(None).get(path)
        assert response.status_code == 401, path
        assert response.json()["code"] == "not_authenticated", path


async def test_wrong_method_is_405_json(api_client, owner):
    response = await api_client(owner).put("/api/health")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_huge_body_is_413_json(api_client, owner, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = await api_client(owner).post("/api/agents/messages", "x" * 5000, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


async def test_absurd_offset_is_not_a_500(api_client, owner):
    response = await api_client(owner).get("/api/tokens?offset=99999999999999999999")
    assert response.status_code in (200, 422)
    assert "items" in response.json() or response.json()["code"] == "validation_error"


async def test_unknown_api_path_is_404_json(api_client, owner):
    response = await api_client(owner).get("/api/no-such-thing/here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert "detail" in response.json()


async def test_bad_token_is_401_with_error_shape():
    client = BearerClient("abt_not-a-real-token")
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert response.json() == {"detail": "the API token is invalid, expired or revoked", "code": "invalid_token"}


async def test_no_credentials_is_401_with_error_shape():
    response = await AsyncClient().get("/api/me")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "not_authenticated" and body["detail"]


async def test_token_authenticates(api_client, owner):
    response = await api_client(owner).get("/api/me")
    assert response.status_code == 200
    assert response.json()["username"] == "owner"


def test_session_unsafe_call_without_csrf_is_403_json(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/api/tokens", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


def test_session_unsafe_call_with_csrf_succeeds(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    client.get("/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/api/tokens", {"name": "x"}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert response.json()["token"].startswith("abt_")


async def test_validation_error_is_422_with_errors(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    response = await client.post("/api/tokens", {"expires_days": "soon"}, content_type="application/json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert "expires_days" in body["detail"]
    assert body["errors"]


async def test_malformed_json_body_is_an_error_not_500(owner):
    client = AsyncClient()
    await client.aforce_login(owner)
    response = await client.post("/api/tokens", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"
    assert "detail" in response.json()


async def test_openapi_is_valid_and_documents_health():
    response = await AsyncClient().get("/api/openapi.json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/health" in schema["paths"]
    docs = await AsyncClient().get("/api/docs")
    assert docs.status_code == 200


@pytest.mark.parametrize("path", ["/api/chat/sessions", "/api/agents/messages", "/api/knowledge/entries",
                                  "/api/files/", "/api/me"])
async def test_browser_session_reaches_every_app(owner, path):
    # Handlers read request.user: session auth must hand them the resolved user, not Django's
    # lazy one (which would query the database synchronously inside async code).
    client = AsyncClient()
    await client.aforce_login(owner)
    response = await client.get(path)
    assert response.status_code == 200, response.content
