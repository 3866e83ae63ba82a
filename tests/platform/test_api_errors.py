import pytest
from django.test import AsyncClient, Client

from tests.conftest import BearerClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_anonymous_api_call_gets_401_json(api_client):
    response = await api_client(None).get("/api/terminal/")
    assert response.status_code in (401, 404)  # a router may not define "/" yet
    response = await AsyncClient().get("/api/openapi.json")
    assert response.status_code == 200


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


async def test_validation_error_is_422_with_errors(api_client, owner):
    response = await api_client(owner).post("/api/tokens", {"expires_days": "soon"}, content_type="application/json")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert "expires_days" in body["detail"]
    assert body["errors"]


async def test_malformed_json_body_is_an_error_not_500(api_client, owner):
    response = await api_client(owner).post("/api/tokens", "{not json", content_type="application/json")
    assert response.status_code in (400, 422)
    assert "detail" in response.json()


async def test_openapi_is_valid_and_documents_health():
    response = await AsyncClient().get("/api/openapi.json")
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/health" in schema["paths"]
    docs = await AsyncClient().get("/api/docs")
    assert docs.status_code == 200
