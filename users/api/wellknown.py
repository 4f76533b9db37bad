"""What another service reads to verify sidus's tokens by itself: the key set (RFC 7517) and a
partial OpenID discovery document. Public, cacheable, never stored with a secret."""
import hashlib
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from users.auth.keys import ASYMMETRIC
from users.runtime import current


def _cacheable(request: HttpRequest, document: dict) -> HttpResponse:
    """The document with an ETag (a 304 when it matches) and `Cache-Control: public`, for a
    quarter of the time a new key waits before it signs: a cache never misses a key long."""
    body = json.dumps(document, separators=(",", ":"), sort_keys=True)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'
    max_age = max(1, int(2 * settings.USER_CACHE_MAX_STALENESS / 4))
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"], response["Cache-Control"] = etag, f"public, max-age={max_age}"
    return response


@require_safe
def jwks(request: HttpRequest) -> HttpResponse:
    """GET /.well-known/jwks.json: every key that verifies a live token (none with HS256)."""
    if settings.JWT_ALGORITHM not in ASYMMETRIC:
        return JsonResponse({"keys": []})
    return _cacheable(request, current().signing_keys.current().jwks())


@require_safe
def openid_configuration(request: HttpRequest) -> HttpResponse:
    """GET /.well-known/openid-configuration: the fields a resource server reads (issuer, jwks_uri,
    the algorithm); sidus is no OpenID provider, and says only what is true of it."""
    base = request.build_absolute_uri("/").rstrip("/")
    return _cacheable(request, {
        "issuer": settings.SIMPLE_JWT["ISSUER"],
        "jwks_uri": base + reverse("jwks"),
        "token_endpoint": base + reverse("token_obtain_pair"),
        "introspection_endpoint": base + reverse("introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "id_token_signing_alg_values_supported": [settings.JWT_ALGORITHM],
        "token_endpoint_auth_methods_supported": ["none"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "jti", "sid", "amr", "auth_time"],
    })
