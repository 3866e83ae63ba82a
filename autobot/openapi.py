"""The OpenAPI document, made to tell the truth about errors and schema names.

django-ninja keeps one dict of component schemas and lets a later schema silently replace an
earlier one of the same name; two apps' `SessionOut` then share one (wrong) definition. Here a
clash stops the document from being built, so a test (and /api/openapi.json) fails instead.

Every operation's error responses come from one place: the errors its shape implies (401 when it
needs authentication, 403 for a CSRF failure on unsafe methods with a browser session, 400, 413
and 422 when it takes a body or parameters, 404 when it has path parameters), plus the ones its
route declares with `autobot.errors.errors(...)`; 503 on every authenticated operation (Redis
away). All of them reference the `Error` component (`ValidationErrorOut` for 422).
"""

from http import HTTPStatus

from ninja.openapi.schema import REF_TEMPLATE, OpenAPISchema
from ninja.schema import NinjaGenerateJsonSchema

from autobot.errors import Error, ValidationErrorOut

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
BODY_SOURCES = {"body", "form", "file"}
DESCRIPTIONS = {
    400: "Bad request: the body cannot be parsed (not JSON, not a JSON object, nested too deep, bad multipart)",
    401: "Not authenticated: log in or send `Authorization: Bearer <token>`",
    403: "Forbidden: not allowed, or (browser sessions) the CSRF check failed",
    404: "Not found, or not yours",
    409: "Conflict with the current state",
    413: "Too large",
    422: "Validation failed: `errors` lists each invalid value",
    429: "Too many requests: wait and retry (see `Retry-After`)",
    503: "A dependency is unavailable (`redis_unavailable`: Redis did not answer): try again in a moment",
    504: "Timed out",
}


class SchemaNameClash(Exception):
    pass


class AutoBotOpenAPISchema(OpenAPISchema):
    def add_schema_definitions(self, definitions: dict) -> None:
        for name, definition in definitions.items():
            known = self.schemas.get(name)
            # The same model may be rendered in validation and serialization mode; only a
            # different set of fields means two different models.
            if known is not None and set(known.get("properties", {})) != set(definition.get("properties", {})):
                raise SchemaNameClash(
                    f"two schemas are named {name!r} (fields {sorted(known.get('properties', {}))} and "
                    f"{sorted(definition.get('properties', {}))}): give each app's schemas its own prefix"
                )
        super().add_schema_definitions(definitions)

    def responses(self, operation) -> dict:
        result = super().responses(operation)
        for status in implied_errors(operation):
            result.setdefault(status, {})
        for status, details in result.items():
            if status >= 400 and "content" not in details:
                details["content"] = {"application/json": {"schema": self._error_ref(status)}}
            if status in DESCRIPTIONS and details.get("description") in (None, HTTPStatus(status).phrase):
                details["description"] = DESCRIPTIONS[status]
        return dict(sorted(result.items()))

    def _error_ref(self, status: int) -> dict:
        model = ValidationErrorOut if status == 422 else Error
        if model.__name__ not in self.schemas:
            schema = model.model_json_schema(ref_template=REF_TEMPLATE, schema_generator=NinjaGenerateJsonSchema,
                                             mode="serialization")
            self.add_schema_definitions({**schema.pop("$defs", {}), model.__name__: schema})
        return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def implied_errors(operation) -> set[int]:
    """The errors any operation of this shape can return, whatever its handler does."""
    statuses = set()
    sources = {model.__ninja_param_source__ for model in operation.models if model.model_fields}
    takes_body = bool(sources & BODY_SOURCES) or "requestBody" in (operation.openapi_extra or {})
    if operation.auth_callbacks:
        # 503 redis_unavailable: with several workers, what an authenticated call does may need
        # Redis (the channel layer, the rate limits, the agents' replay check), and it may be away.
        statuses |= {401, 503}
        if UNSAFE_METHODS & set(operation.methods):
            statuses.add(403)
    if takes_body:
        statuses |= {400, 413, 422}
    if sources:
        statuses.add(422)
    if "path" in sources:
        statuses.add(404)
    return statuses
