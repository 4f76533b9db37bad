"""The OpenAPI contract's shared parts: error bodies, the statuses an operation can answer, and a
hook that says in the schema what DRF enforces but drf-spectacular does not write down.

Views declare their answers with `api_responses(...)`; `tests/test_contract.py` runs
schemathesis against a live server to keep schema and behaviour identical.
"""
from typing import Any

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

DETAIL_ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "messages": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["detail"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": "Each key names a field (or `non_field_errors`) and lists what is wrong with it; "
                   "a body that is not JSON gets `detail` instead.",
    "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
}

_ERRORS: dict[int, tuple[dict[str, Any], str]] = {
    400: (FIELD_ERRORS, "Invalid input: field errors, or a body that is not JSON (`detail`)."),
    401: (DETAIL_ERROR, "No valid token: missing, malformed or expired, issued before the last password change "
                        "or logout, of an ended session, or the user is deleted. `code` says which, where known."),
    403: (DETAIL_ERROR, "The token's user is someone else: only users change their own profile."),
    404: (DETAIL_ERROR, "No such user: unknown, deleted, or the id is not in canonical form."),
    409: (FIELD_ERRORS, "The username or email is taken by another user (whatever its case)."),
    412: (DETAIL_ERROR, "`If-Match` names a version that is no longer current: read again, then retry."),
    413: (DETAIL_ERROR, "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE (64 KiB by default)."),
    415: (DETAIL_ERROR, "The body is not `application/json`."),
    429: (DETAIL_ERROR, "Rate limited: try again after `Retry-After` seconds."),
    503: (DETAIL_ERROR, "PostgreSQL is unreachable: try again later."),
}

RETRY_AFTER = OpenApiParameter(
    "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429], required=True,
    description="Seconds until the rate limit lets this client (or username) try again.",
)


ETAG = OpenApiParameter(
    "ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200, 304],
    description="Strong tag of this version of the profile: send it back in If-None-Match or If-Match.",
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="ETags you hold (or `*`): a 304 with no body if one is current.",
)
IF_MATCH = OpenApiParameter(
    "If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER,
    description="The ETag you read (from this profile or /users/me/), or `*`: a 412, writing nothing, "
                "if the profile changed since.",
)
NOT_MODIFIED = OpenApiResponse(description="Not modified: the ETag you sent is current. No body.")


def api_responses(success: dict[int, Any], *errors: int,
                  own: dict[int, tuple[dict[str, Any], str]] | None = None) -> dict[int, Any]:
    """`success` plus the error answers `errors`, each with its body's schema; 503 is always possible.
    `own` gives an operation's own body and wording of a status (a 404 of sessions, not of users)."""
    responses = dict(success)
    for status in sorted({*errors, *(own or {}), 503}):
        schema, description = (own or {}).get(status) or _ERRORS[status]
        responses[status] = OpenApiResponse(response=schema, description=description)
    return responses


# Strings DRF refuses although they are valid JSON strings: NUL anywhere (every CharField), and
# whitespace only where blank is not allowed (CharField trims before it checks).
_NO_NUL = r"^[^\u0000]*$"
_NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


def _strict_request_component(schema: dict[str, Any]) -> None:
    schema["additionalProperties"] = False  # unknown keys are a 400, not silently dropped
    for prop in schema.get("properties", {}).values():
        if prop.get("type") != "string" or "format" in prop:
            continue
        if "pattern" in prop:
            prop["not"] = {"pattern": r"\u0000"}
        else:
            prop["pattern"] = _NOT_BLANK if prop.get("minLength", 0) >= 1 else _NO_NUL


def strict_request_bodies(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: request bodies are closed and their strings honest."""
    schemas = result.get("components", {}).get("schemas", {})
    for path in result.get("paths", {}).values():
        for operation in path.values():
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                component = schemas.get(ref.rsplit("/", 1)[-1])
                if component is not None:
                    _strict_request_component(component)
    return result


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular writes no request body for DELETE; DELETE /users/me/ takes the password."""

    def _get_request_body(self, direction: str = "request") -> Any:
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        # Read while DELETE's own extend_schema applies, then handed to the POST code that writes bodies.
        serializer, examples = self.get_request_serializer(), self.get_examples()
        self.method, self.get_request_serializer, self.get_examples = "POST", lambda: serializer, lambda: examples
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"
            del self.get_request_serializer, self.get_examples
