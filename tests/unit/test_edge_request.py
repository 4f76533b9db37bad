"""The edge's request model against Django's own: the same scope, read by `EdgeRequest` and by
Django's `ASGIRequest`, gives the same headers, host, scheme and content type."""
import io

import pytest
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidus.edge import request as edge_request
from sidus.edge.request import EdgeRequest, accepts_plain_json, host_allowed

NAMES = [b"host", b"accept", b"content-type", b"x-forwarded-proto", b"x_forwarded_proto", b"x-forwarded-host",
         b"x-forwarded-for", b"authorization", b"if-none-match", b"cookie"]
VALUES = [b"localhost", b"localhost:8000", b"127.0.0.1", b"evil.example", b"", b"https", b"http", b"https, http",
          b"application/json", b"application/json; charset=latin-1", b"text/html", b"[::1]:80", b"a,b",
          b"Application/JSON;Charset=UTF-8", b"*/*", b"application/json; charset=bogus"]


@pytest.fixture
def proxied(settings):
    """DJANGO_HTTPS's setting: X-Forwarded-Proto decides the scheme."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")  # read again on setting_changed


def scope_of(headers, scheme="http") -> dict:
    return {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": headers,
            "scheme": scheme, "server": ("testserver", 80), "client": ("10.0.0.1", 1234)}


def django_host(request: ASGIRequest) -> tuple[str, bool]:
    try:
        return request.get_host(), True
    except DisallowedHost:
        return request._get_raw_host(), False


headers_strategy = st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=8)


@settings(max_examples=300, deadline=None)
@given(headers_strategy, st.sampled_from(["http", "https"]), st.booleans())
def test_the_request_model_reads_a_scope_as_django_does(headers, scheme, behind_proxy):
    from django.test import override_settings

    proxy = ("HTTP_X_FORWARDED_PROTO", "https") if behind_proxy else None
    with override_settings(SECURE_PROXY_SSL_HEADER=proxy):
        scope = scope_of(headers, scheme)
        ours, theirs = EdgeRequest(scope, None), ASGIRequest(scope, io.BytesIO(b""))
        # Every header as Django has it in META; one with an underscore is never looked up (a name
        # is asked for with hyphens), so it is as absent as Django makes it.
        seen = {name: value for name, value in ours.headers.items() if b"_" not in name}
        for name, value in seen.items():
            meta = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(
                name.decode(), "HTTP_" + name.decode().upper().replace("-", "_"))
            assert theirs.META[meta] == value.decode("latin-1")
        assert len(seen) == sum(1 for key in theirs.META if key.startswith("HTTP_") or key == "CONTENT_TYPE")
        host, allowed = django_host(theirs)
        assert ours.host.decode("latin-1") == host and host_allowed(ours.host) is allowed
        assert ours.secure is theirs.is_secure()
        assert ours.content_type() == (theirs.content_type, theirs.content_params)
        assert ours.encoding == theirs.encoding


def test_without_a_proxy_header_setting_the_header_means_nothing():
    assert edge_request.settings_rules().proxy is None
    assert EdgeRequest(scope_of([(b"x-forwarded-proto", b"https")]), None).secure is False


def test_an_underscore_header_cannot_pose_as_the_proxys(proxied):
    request = EdgeRequest(scope_of([(b"x_forwarded_proto", b"https")]), None)
    assert request.secure is False and b"x-forwarded-proto" not in request.headers


@pytest.mark.parametrize("accept, plain", [
    (b"", True), (b"application/json", True), (b"*/*", True), (b"application/json, text/plain", True),
    (b"text/html", False), (b"application/json; indent=4", False), (b"text/*", False), (b"text/plain", False),
])
def test_plain_json_is_what_drf_renders_without_parameters(accept, plain):
    assert accepts_plain_json(accept) is plain


# --- What the edge may replay: judged from Django's answer itself ------------------------------

JSON_200 = [(b"content-type", b"application/json"), (b"vary", b"Accept"), (b"allow", b"GET")]


@pytest.mark.parametrize("extra, replayable, shareable", [
    ([], True, True),
    ([(b"Vary", b"Accept, Accept-Encoding")], True, True),
    ([(b"Vary", b"Cookie")], False, False),
    ([(b"Vary", b"Accept, Origin")], False, False),
    ([(b"Set-Cookie", b"a=b")], False, False),
    ([(b"Access-Control-Allow-Origin", b"*")], False, False),
    ([(b"Content-Language", b"fr")], False, False),
    ([(b"Cache-Control", b"max-age=0, no-cache, no-store, must-revalidate, private")], True, False),
    ([(b"Cache-Control", b"private")], True, False),
    ([(b"Cache-Control", b"max-age=60")], True, True),
])
def test_an_answer_is_replayed_only_if_nothing_in_it_is_per_client(extra, replayable, shareable):
    from sidus.edge import answers

    assert answers.replayable(200, JSON_200 + extra) is replayable
    assert answers.shareable(200, JSON_200 + extra) is shareable
    assert not answers.replayable(404, JSON_200 + extra)
    assert not answers.replayable(200, [(b"content-type", b"text/html")] + extra)
