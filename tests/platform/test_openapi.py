"""The OpenAPI document tells the truth: one schema per name, every field a handler reads or
returns is in it, and every operation documents its errors with the shared `Error` component."""

import pytest
from django.test import AsyncClient
from ninja import Router, Schema
from pydantic import BaseModel

from autobot.api import AutoBotAPI, api
from autobot.openapi import SchemaNameClash


def _operations():
    for bound in api._get_bound_routers():
        for path_view in bound.path_operations.values():
            yield from path_view.operations


def _model_of(wrapper) -> type[BaseModel] | None:
    """The pydantic model inside one of ninja's single-field wrappers (body or response), if any."""
    if not isinstance(wrapper, type) or not issubclass(wrapper, BaseModel) or len(wrapper.model_fields) != 1:
        return None
    annotation = next(iter(wrapper.model_fields.values())).annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _fields(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.fixture(scope="module")
def document():
    return api.get_openapi_schema()


def test_it_refuses_two_schemas_with_one_name():
    first, second = Router(), Router()

    class SessionOut(Schema):
        title: str

    @first.get("/a", response=SessionOut)
    def a(request):
        return {}

    class SessionOut(Schema):  # noqa: F811 — the clash under test
        cols: int

    @second.get("/b", response=SessionOut)
    def b(request):
        return {}

    clashing = AutoBotAPI(urls_namespace="clash-test")
    clashing.add_router("/first/", first)
    clashing.add_router("/second/", second)
    with pytest.raises(SchemaNameClash, match="SessionOut"):
        clashing.get_openapi_schema(path_prefix="")


def test_every_body_and_response_model_is_documented_with_all_its_fields(document):
    components = document["components"]["schemas"]
    checked = 0
    for operation in _operations():
        wrappers = [m for m in operation.models if m.__ninja_param_source__ == "body"]
        wrappers += list(operation.response_models.values())
        for model in filter(None, map(_model_of, wrappers)):
            assert model.__name__ in components, f"{operation.view_func.__qualname__}: {model.__name__} missing"
            documented = set(components[model.__name__].get("properties", {}))
            assert documented == _fields(model), f"{model.__name__} is documented with another model's fields"
            checked += 1
    assert checked > 40


def test_terminal_and_chat_sessions_have_their_own_fields(document):
    paths = document["paths"]
    body_ref = paths["/api/terminal/sessions"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    terminal_in = document["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"security_level", "cols", "rows"} <= set(terminal_in["properties"])
    chat_out = paths["/api/chat/sessions/{session_id}"]["get"]["responses"][200]["content"]
    chat_ref = chat_out["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "generating" in document["components"]["schemas"][chat_ref]["properties"]


def test_a_prefetched_list_documents_the_parameters_its_token_check_guesses(document):
    # The token check reads a list's page with its guess of the view's parameters (autobot/prefetch.py):
    # the guess, the view and the document must share their names and defaults, or a call with no
    # parameters is read twice with different values, and clients are told defaults the view lacks.
    operations = {op["operationId"]: op for ops in document["paths"].values() for op in ops.values()}
    checked = 0
    for operation in _operations():
        prefetches = [auth.prefetch for auth in operation.auth_callbacks if getattr(auth, "prefetch", None)]
        if not prefetches:
            continue
        # A list's guess is of its query parameters; the chat message POST's, of its path's (required).
        where = "path" if prefetches[0].path else "query"
        documented = {p["name"]: p["schema"].get("default") for p in
                      operations[api.get_openapi_operation_id(operation)]["parameters"] if p["in"] == where}
        guessed = {name: None if field.is_required() else field.default
                   for name, field in prefetches[0].params.model_fields.items()}
        assert documented == guessed, operation.view_func.__qualname__
        checked += 1
    assert checked >= 3  # the chat session list, the knowledge entry list, the chat message POST


def test_every_operation_documents_its_errors_with_the_shared_component(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = {int(status): body for status, body in operation["responses"].items()}
            if operation.get("security"):
                assert 401 in responses, f"{method} {path}"
            if "requestBody" in operation:
                assert {400, 413, 422} <= set(responses), f"{method} {path}"
            if "{" in path:
                assert 404 in responses, f"{method} {path}"
            errors = {s: b for s, b in responses.items() if s >= 400 and path != "/api/health"}
            for status, body in errors.items():
                ref = body["content"]["application/json"]["schema"]["$ref"]
                if status == 422:
                    assert ref == "#/components/schemas/ValidationErrorOut", f"{method} {path}"
                component = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
                assert {"detail", "code"} <= set(component["required"]), f"{method} {path} {status}"


def test_error_components_name_their_fields(document):
    components = document["components"]["schemas"]
    assert set(components["Error"]["required"]) == {"detail", "code"}
    assert "errors" in components["ValidationErrorOut"]["properties"]


async def test_served_document_is_the_checked_one():
    response = await AsyncClient().get("/api/openapi.json")
    assert response.status_code == 200
    assert "ChatSessionOut" in response.json()["components"]["schemas"]
    assert "TerminalSessionOut" in response.json()["components"]["schemas"]
