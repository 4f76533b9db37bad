"""Signup under SIGNUP_PREVENT_ENUMERATION: the same answer, in the same time, whether or not the
address has an account; the account is created by the link emailed to the address, and the owner of a
taken address gets a notice. With the setting off (the default), a taken address is a 409."""
import statistics
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import PASSWORD
from tests.smtp import link_in, received, text_and_html
from users import links, services
from users.models import OutboxEmail, PendingSignup, User

pytestmark = pytest.mark.django_db(transaction=True)

USERS = "/api/v1/users/"
CONFIRM = "/api/v1/auth/signup/confirm/"


@pytest.fixture
def quiet(settings):
    settings.SIGNUP_PREVENT_ENUMERATION = True


def signup(username: str, email: str, **extra):
    body = {"username": username, "email": email, "password": PASSWORD, **extra}
    return APIClient().post(USERS, body, format="json")


def login_status(username: str) -> int:
    body = {"username": username, "password": PASSWORD}
    return APIClient().post("/api/v1/auth/token/", body, format="json").status_code


def test_by_default_a_taken_address_is_a_409(make_user):
    make_user(email="ada@example.com")
    response = signup("newcomer", "ADA@example.com")
    assert response.status_code == 409 and "email" in response.json()


def test_a_new_address_gets_a_link_that_creates_the_account_verified(quiet, inbox):
    response = signup("ada", "ada@example.com", first_name="Ada")
    assert response.status_code == 202 and set(response.json()) == {"detail"}
    assert not User.objects.filter(username="ada").exists()  # nothing shows before the link is used
    assert login_status("ada") == 401

    message = received(inbox, "ada@example.com", "Confirm your address to create your sidus account")[0]
    token = link_in(message, "confirm-signup")["token"]
    created = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["username"] == "ada" and created.json()["email_verified"] is True
    assert created.json()["first_name"] == "Ada"
    assert login_status("ada") == 200
    assert not PendingSignup.objects.exists()

    again = APIClient().post(CONFIRM, {"token": token}, format="json")
    assert again.status_code == 400 and "token" in again.json()


def test_a_taken_address_answers_alike_and_its_owner_is_told(quiet, inbox, make_user):
    owner = make_user(username="owner", email="ada@example.com")
    fresh = signup("someone", "fresh@example.com")
    taken = signup("prober", "ADA@example.com")

    assert taken.status_code == fresh.status_code == 202
    assert taken.json() == fresh.json()
    assert dict(taken.headers).keys() == dict(fresh.headers).keys()
    notice = received(inbox, "ada@example.com", "Someone tried to sign up to sidus with your address")[0]
    text, _ = text_and_html(notice)
    assert owner.username in text and "No second account was created" in text
    assert not User.objects.filter(username="prober").exists()
    assert not PendingSignup.objects.filter(username="prober").exists()
    # The prober's username stays free, as after any signup not yet confirmed: it tells nothing.
    assert signup("prober", "other@example.com").status_code == 202
    assert login_status("prober") == 401


def test_a_taken_username_is_still_a_409(quiet, make_user):
    make_user(username="ada")
    response = signup("ADA", "new@example.com")
    assert response.status_code == 409 and "username" in response.json()


def test_a_bad_signup_is_a_400_naming_the_field(quiet, make_user):
    make_user(email="ada@example.com")
    response = signup("newcomer", "ada@example.com", password="short")
    assert response.status_code == 400 and set(response.json()) == {"password"}


def test_a_link_whose_username_was_taken_since_is_a_409(quiet):
    assert signup("ada", "ada@example.com").status_code == 202
    assert signup("ada", "other@example.com").status_code == 202
    first, second = PendingSignup.objects.order_by("pk")
    assert APIClient().post(CONFIRM, {"token": token_of(first)}, format="json").status_code == 201
    response = APIClient().post(CONFIRM, {"token": token_of(second)}, format="json")
    assert response.status_code == 409 and "username" in response.json()
    assert User.objects.get(username="ada").email == "ada@example.com"


def token_of(signup: PendingSignup) -> str:
    return parse_qs(urlsplit(links.signup_link(signup)).query)["token"][0]


def test_an_expired_or_forged_link_is_a_400(quiet, settings):
    assert signup("ada", "ada@example.com").status_code == 202
    pending = PendingSignup.objects.get()
    token = token_of(pending)
    for bad in (token[:-2] + "xx", "nonsense", token.replace(":", "", 1)):
        assert APIClient().post(CONFIRM, {"token": bad}, format="json").status_code == 400
    settings.PASSWORD_RESET_TIMEOUT = -1  # every link expired
    assert APIClient().post(CONFIRM, {"token": token}, format="json").status_code == 400


def test_expired_signups_are_forgotten(quiet, settings):
    assert signup("ada", "ada@example.com").status_code == 202
    assert signup("bob", "bob@example.com").status_code == 202
    PendingSignup.objects.filter(username="ada").update(created_at=timezone.now() - timedelta(hours=2))
    assert services.signups_expire() == 1
    assert list(PendingSignup.objects.values_list("username", flat=True)) == ["bob"]
    # Its email, were it still pending, would be skipped rather than sent without a link.
    assert OutboxEmail.objects.filter(kind=OutboxEmail.Kind.SIGNUP_CONFIRM, signup=None).count() == 1


@pytest.mark.slow
def test_a_taken_address_costs_the_same_time_as_a_new_one(quiet, settings, make_user):
    """Medians of 200 signups each, interleaved, with the real Argon2id hasher: within 10%."""
    settings.PASSWORD_HASHERS = ["users.hashers.Argon2idPasswordHasher"]
    settings.RATE_LIMITS_ENABLED = False
    make_user(email="taken@example.com")
    client = APIClient()
    timings: dict[str, list[float]] = {"new": [], "taken": []}
    for n in range(200):
        for kind, email in (("new", f"new{n}@example.com"), ("taken", "taken@example.com")):
            body = {"username": f"{kind}{n}", "email": email, "password": PASSWORD}
            started = time.perf_counter()
            response = client.post(USERS, body, format="json")
            timings[kind].append(time.perf_counter() - started)
            assert response.status_code == 202
    new, taken = statistics.median(timings["new"]), statistics.median(timings["taken"])
    print(f"signup medians: new address {new * 1000:.2f} ms, taken address {taken * 1000:.2f} ms")
    assert abs(new - taken) <= 0.1 * min(new, taken)
