"""Rate limits: 429 with Retry-After and a JSON detail, lockout of one username, fail-open."""
import time

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings
from django.urls import reverse

from tests.support import PASSWORD, assert_429, bearer, limits, login
from users.models import User
from users.ratelimits import Rate, client_ip, parse_rates

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token/"
USERS = "/api/v1/users/"


# --- the syntax --------------------------------------------------------------------------------


def test_parse_rates_reads_allauths_syntax():
    assert parse_rates("10/m/ip,5/5m/key") == (Rate(10, 60, "ip"), Rate(5, 300, "key"))
    assert parse_rates("30/h") == (Rate(30, 3600, "ip"),)
    assert parse_rates(" 1/2d/user ") == (Rate(1, 172800, "user"),)
    assert parse_rates("") == ()


@pytest.mark.parametrize("spec", ["10", "10/x", "ten/m", "10/m/everyone", "10/m/ip/extra", "10/-5m"])
def test_a_bad_rate_fails_the_system_check(spec):
    with pytest.raises(ValueError):
        parse_rates(spec)
    with limits(login=spec), pytest.raises(SystemCheckError, match="RATE_LIMIT_LOGIN"):
        call_command("check")


# --- failed logins -----------------------------------------------------------------------------


@limits(login_failed="100/m/ip,3/1d/key")
def test_failed_logins_lock_that_username_even_with_the_right_password(api_client, make_user):
    ada, bob = make_user(username="ada"), make_user(username="bob")
    for _ in range(3):
        assert login(api_client, "ada", "wrong").status_code == 401
    assert_429(login(api_client, "ada"))
    assert_429(login(api_client, "ADA"))  # the same username, as login compares it
    assert login(api_client, "bob").status_code == 200
    assert ada.pk and bob.pk


@limits(login_failed="100/m/ip,3/1d/key")
def test_successful_logins_do_not_count_as_failures(api_client, user):
    for _ in range(5):
        assert login(api_client, user.username).status_code == 200


@limits(login_failed="100/m/ip,3/1d/key")
def test_an_unknown_username_locks_the_same_way(api_client):
    for _ in range(3):
        assert login(api_client, "nobody", "wrong").status_code == 401
    assert_429(login(api_client, "nobody", "wrong"))


@limits(login_failed="3/1d/ip,100/5m/key")
def test_failed_logins_from_one_ip_lock_that_ip_only(api_client, user):
    for name in ("a", "b", "c"):
        assert login(api_client, name, "wrong").status_code == 401
    assert_429(login(api_client, user.username))
    assert login(api_client, user.username, REMOTE_ADDR="10.0.0.2").status_code == 200


@pytest.mark.slow  # it times real password hashing: seconds
@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])
@limits(login_failed="100/m/ip,2/1d/key")
def test_a_locked_username_answers_as_slowly_as_a_wrong_password(api_client, make_user):
    from users.accounts import user_soft_delete

    make_user(username="slow", password=PASSWORD)
    user_soft_delete(user=make_user(username="gone", password=PASSWORD))
    make_user(username="locked", password=PASSWORD)
    for _ in range(2):
        login(api_client, "locked", "wrong")

    def timed(username, password):
        started = time.perf_counter()
        status = login(api_client, username, password).status_code
        return status, time.perf_counter() - started

    status, wrong = timed("slow", "wrong")
    assert status == 401
    for username, expected in (("nobody", 401), ("gone", 401), ("locked", 429)):
        status, took = timed(username, PASSWORD)
        assert status == expected
        assert took > wrong / 2, (username, took, wrong)


@limits(login_failed="100/m/ip,2/1d/key")
def test_the_admin_login_shares_the_failed_login_limit(make_user):
    make_user(username="boss", password=PASSWORD, is_staff=True, is_superuser=True)
    client = Client()
    url = reverse("admin:login")
    for _ in range(2):
        assert client.post(url, {"username": "boss", "password": "wrong"}).status_code == 200
    response = client.post(url, {"username": "boss", "password": PASSWORD})
    assert response.status_code == 200 and "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    make_user(username="other", password=PASSWORD, is_staff=True)
    assert client.post(url, {"username": "other", "password": PASSWORD}).status_code == 302


# --- attempts ----------------------------------------------------------------------------------


@limits(login="3/1d/ip")
def test_logins_per_ip(api_client, user):
    for _ in range(3):
        assert login(api_client, user.username).status_code == 200
    assert_429(login(api_client, user.username))


@limits(signup="2/1d/ip")
def test_signups_per_ip_count_failed_ones_too(api_client):
    assert api_client.post(USERS, {"username": "x"}, format="json").status_code == 400
    payload = {"username": "first", "email": "first@example.com", "password": PASSWORD}
    assert api_client.post(USERS, payload, format="json").status_code == 201
    response = api_client.post(USERS, {**payload, "username": "second", "email": "s@example.com"}, format="json")
    assert_429(response)
    assert not User.objects.filter(username="second").exists()


@limits(refresh="2/1d/ip")
def test_refreshes_per_ip(api_client, user):
    refresh = login(api_client, user.username).json()["refresh"]
    for _ in range(2):
        response = api_client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json")
        refresh = response.json()["refresh"]
    assert_429(api_client.post("/api/v1/auth/token/refresh/", {"refresh": refresh}, format="json"))


@limits(update="2/1d/user")
def test_profile_updates_per_user(api_client, user, make_user):
    for bio in ("one", "two"):
        assert api_client.patch(f"{USERS}me/", {"bio": bio}, format="json", **bearer(user)).status_code == 200
    assert_429(api_client.patch(f"{USERS}{user.pk}/", {"bio": "three"}, format="json", **bearer(user)))
    user.refresh_from_db()
    assert user.bio == "two"
    other = make_user()
    assert api_client.patch(f"{USERS}me/", {"bio": "fine"}, format="json", **bearer(other)).status_code == 200
    assert api_client.get(f"{USERS}me/", **bearer(user)).status_code == 200  # reads are not updates


@override_settings(RATE_LIMITS_ENABLED=False)
@limits(login="1/1d/ip", login_failed="1/1d/ip")
def test_switched_off_nothing_is_limited(api_client, user):
    for _ in range(3):
        assert login(api_client, user.username, "wrong").status_code == 401
        assert login(api_client, user.username).status_code == 200


# --- the client IP -----------------------------------------------------------------------------


class _Request:
    def __init__(self, remote: str, forwarded: str = "") -> None:
        self.META = {"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded}


@pytest.mark.parametrize(
    "proxies, remote, forwarded, expected",
    [
        (0, "10.0.0.1", "6.6.6.6", "10.0.0.1"),  # no trusted proxy: the header is the client's to forge
        (1, "10.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # appended by our one proxy
        (2, "10.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.7", "203.0.113.9"),
        (2, "10.0.0.1", "203.0.113.9", "10.0.0.1"),  # fewer entries than proxies: not through them
        (1, "10.0.0.1", "not-an-ip", "not-an-ip"),
        (0, "2001:db8::1", "", "2001:db8::"),  # IPv6 per /64
    ],
)
def test_client_ip(settings, proxies, remote, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_ip(_Request(remote, forwarded)) == expected


@limits(login="2/1d/ip")
def test_a_forged_forwarded_for_does_not_escape_the_limit(api_client, user):
    for n in range(2):
        assert login(api_client, user.username, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code == 200
    assert_429(login(api_client, user.username, HTTP_X_FORWARDED_FOR="198.51.100.99"))


def test_the_default_limits_are_allauths(settings):
    assert settings.RATE_LIMITS == {
        "login_failed": "10/m/ip,5/5m/key", "login": "30/m/ip", "signup": "20/m/ip",
        "refresh": "60/m/ip", "update": "30/m/user",
        # The account lifecycle (issue 9): allauth's where it has one, the otherwise.
        "password_change": "5/m/user", "password_reset": "20/m/ip,5/m/key", "password_reset_confirm": "20/m/ip",
        "email_verify": "20/m/ip", "email_verify_resend": "1/3m/user", "account_delete": "5/m/user",
        "signup_confirm": "20/m/ip",  # issue 16: as the other links
        "sessions": "60/m/user",  # issue 19
        "email_to_address": "3/h/key,10/d/key",  # issue 27: allauth's confirm_email is 1/3m/key
        "email_change": "5/h/user", "account_link": "20/m/ip",  # issue 28
        "mfa": "20/m/ip,5/5m/key", "factors": "20/m/user",  # issue 31: 5 wrong codes in 5 minutes per account
    }
