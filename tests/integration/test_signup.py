"""Signup under SIGNUP_PREVENT_ENUMERATION: the same answer, in the same time, whether or not the
address has an account; the account is created by the link emailed to the address, and the owner of a
taken address gets a notice. With the setting off (the default), a taken address is a 409."""
import statistics
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests import support
from tests.servers import wait_until
from tests.smtp import link_in, received, text_and_html
from tests.support import PASSWORD
from tests.support import signup_token as token_of
from users import accounts
from users.models import OutboxEmail, PendingSignup, User

pytestmark = pytest.mark.django_db(transaction=True)

USERS = "/api/v1/users/"
CONFIRM = "/api/v1/auth/signup/confirm/"


@pytest.fixture
def quiet(settings):
    settings.SIGNUP_PREVENT_ENUMERATION = True


def signup(username: str, email: str, **extra):
    return support.register(username=username, email=email, **extra)


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
    owner = make_user(username="owner", email="ada@example.com", email_verified=True)
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
    assert accounts.signups_expire() == 1
    assert list(PendingSignup.objects.values_list("username", flat=True)) == ["bob"]
    # Its email, were it still pending, would be skipped rather than sent without a link.
    assert OutboxEmail.objects.filter(kind=OutboxEmail.Kind.SIGNUP_CONFIRM, signup=None).count() == 1


@pytest.mark.slow
def test_a_taken_address_costs_the_same_time_as_a_new_one(quiet, settings, make_user):
    """Medians of 200 signups each, interleaved, with the real Argon2id hasher: within 10%."""
    settings.PASSWORD_HASHERS = ["users.auth.hashers.Argon2idPasswordHasher"]
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


def settled(kind: str) -> list[OutboxEmail]:
    """The emails of `kind`, once the worker has sent or skipped every one."""
    rows = OutboxEmail.objects.filter(kind=kind)
    wait_until(lambda: not rows.filter(status=OutboxEmail.Status.PENDING).exists(), timeout=15)
    return list(rows)


def test_signups_with_a_taken_address_send_its_owner_a_few_notices_not_one_each(quiet, inbox, make_user):
    make_user(email="victim@example.com", email_verified=True)
    for n in range(10):
        assert signup(f"spammer{n}", "victim@example.com").status_code == 202
    notices = settled(OutboxEmail.Kind.SIGNUP_EXISTS)
    assert sorted(row.status for row in notices) == ["sent"] * 3 + ["skipped"] * 7  # RATE_LIMIT_EMAIL_TO_ADDRESS
    assert len(inbox.to("victim@example.com")) == 3
    # Another address is counted apart.
    make_user(email="other@example.com")
    assert signup("spammer-x", "other@example.com").status_code == 202
    received(inbox, "other@example.com", "Someone tried to sign up to sidus with your address")


def test_reset_links_to_one_address_are_capped_whatever_the_requests(inbox, make_user):
    make_user(email="reset-me@example.com")
    for _ in range(5):  # under RATE_LIMIT_PASSWORD_RESET's 5/m per address
        response = APIClient().post("/api/v1/auth/password/reset/", {"email": "reset-me@example.com"}, format="json")
        assert response.status_code == 202
    wait_until(lambda: OutboxEmail.objects.filter(kind=OutboxEmail.Kind.PASSWORD_RESET).count() == 5, timeout=15)
    assert [row.status for row in settled(OutboxEmail.Kind.PASSWORD_RESET)].count("sent") == 3
    assert len(inbox.to("reset-me@example.com")) == 3


PHISHING = '<a href="https://evil.example/">Click here</a> https://evil.example/login'


def test_no_text_a_stranger_wrote_reaches_an_address_not_yet_theirs(quiet, inbox, make_user):
    # A signup with someone's address: its link goes to them, with none of the signup's words.
    assert signup("evil.example", "stranger@example.com", first_name=PHISHING, last_name=PHISHING).status_code == 202
    message = received(inbox, "stranger@example.com", "Confirm your address to create your sidus account")[0]
    text, html = text_and_html(message)
    assert text.splitlines()[0] == "Hello,"
    for part in (text, html):
        assert "evil" not in part and "Click here" not in part
    # An account registered with someone's address (no SIGNUP_PREVENT_ENUMERATION): its mails to that
    # unproven address carry no name either; once verified, the owner's own names are theirs to read.
    owner = make_user(username="evil-owner", email="unproven@example.com", first_name=PHISHING)
    accounts.password_reset_send(user=owner)
    text, html = text_and_html(received(inbox, "unproven@example.com", "Reset your sidus password")[0])
    assert text.splitlines()[0] == "Hello," and "evil" not in text + html
    User.objects.filter(pk=owner.pk).update(email_verified=True)
    accounts.password_reset_send(user=owner)
    text, _ = text_and_html(received(inbox, "unproven@example.com", "Reset your sidus password", count=2)[1])
    assert text.splitlines()[0].startswith("Hello <a href") and "evil-owner" in text
