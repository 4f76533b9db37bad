"""Django's request rules as the ASGI layers apply them: the same answer as HttpRequest gives."""
import pytest
from django.test import RequestFactory

from sidus import edge


@pytest.fixture
def proxied(settings):
    """DJANGO_HTTPS's setting: X-Forwarded-Proto decides the scheme."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    edge.proxy_ssl_header.cache_clear()
    yield
    edge.proxy_ssl_header.cache_clear()


@pytest.mark.parametrize("connection, header, expected", [
    ("http", None, False),
    ("https", None, True),
    ("http", b"https", True),
    ("https", b"http", False),  # the proxy's word wins over the connection's
    ("http", b"https, http", True),  # only the first value counts
    ("http", b"http,https", False),
    ("http", b" https ", True),
])
def test_the_scheme_is_djangos(proxied, connection, header, expected):
    assert edge.is_secure({"scheme": connection}, header) is expected
    meta = {"wsgi.url_scheme": connection}
    if header is not None:
        meta["HTTP_X_FORWARDED_PROTO"] = header.decode()
    assert RequestFactory().get("/", **meta).is_secure() is expected


def test_without_a_proxy_header_setting_the_header_means_nothing():
    assert edge.proxy_ssl_header() is None
    assert edge.is_secure({"scheme": "http"}, b"https") is False


@pytest.mark.parametrize("accept, plain", [
    (b"", True), (b"application/json", True), (b"*/*", True), (b"application/json, text/plain", True),
    (b"text/html", False), (b"application/json; indent=4", False), (b"text/*", False), (b"text/plain", False),
])
def test_plain_json_is_what_drf_renders_without_parameters(accept, plain):
    assert edge.accepts_plain_json(accept) is plain


def test_hosts_as_allowed_hosts_says(settings):
    assert edge.host_allowed(b"localhost:8000") and edge.host_allowed(b"127.0.0.1")
    assert not edge.host_allowed(b"evil.example") and not edge.host_allowed(b"")
