"""The account lifecycle end to end: each email is sent by a real Celery worker to an SMTP server
the test runs, and the links are read out of the received messages, as a user would click them."""
import time

import pytest
from django.contrib.auth.hashers import check_password, identify_hasher, make_password
from django.urls import reverse
from rest_framework.test import APIClient

from tests import support
from tests.smtp import link_in, received, text_and_html
from tests.support import PASSWORD, auth_client, bearer
from users import accounts
from users.mail import links
from users.models import OutboxEmail, User

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a-brand-new-passphrase-7"
AUTH = "/api/v1/auth"


def login(username: str, password: str) -> APIClient:
    return auth_client(username, password)


def register(username: str = "ada", email: str = "ada@example.com") -> APIClient:
    created = support.register(username=username, email=email)
    assert created.status_code == 201, created.content
    assert created.json()["email_verified"] is False
    return auth_client(username)


# --- Email verification ---------------------------------------------------------------------------


def test_the_welcome_email_verifies_the_address_once(inbox):
    client = register()
    welcome = received(inbox, "ada@example.com", "Welcome to sidus")[0]
    link = link_in(welcome, "verify-email")

    assert client.post(f"{AUTH}/email/verify/", link, format="json").status_code == 204
    assert client.get("/api/v1/users/me/").json()["email_verified"] is True
    again = client.post(f"{AUTH}/email/verify/", link, format="json")
    assert again.status_code == 400 and "token" in again.json()
    assert client.post(f"{AUTH}/email/verify/resend/").status_code == 202  # verified: nothing more is sent
    time.sleep(0.5)
    assert len(inbox.to("ada@example.com")) == 1


def test_an_address_staff_change_is_unverified_gets_a_link_and_the_old_one_a_notice(inbox):
    client = register()
    first = link_in(received(inbox, "ada@example.com", "Welcome to sidus")[0], "verify-email")

    ada = User.objects.get(username="ada")
    accounts.user_change_by_staff(user_id=ada.pk, data={"email": "ada@new.example.com"})
    assert client.get("/api/v1/users/me/").json()["email_verified"] is False
    notice = received(inbox, "ada@example.com", "Your sidus email address was changed")[0]
    assert "ada@example.com" in text_and_html(notice)[0] and "verify-email" not in text_and_html(notice)[0]
    link = link_in(received(inbox, "ada@new.example.com", "Confirm your email address")[0], "verify-email")

    stale = client.post(f"{AUTH}/email/verify/", first, format="json")  # made for the old address
    assert stale.status_code == 400 and "token" in stale.json()
    assert client.post(f"{AUTH}/email/verify/", link, format="json").status_code == 204
    assert User.objects.get(username="ada").email_verified


def test_resend_sends_a_new_link_at_most_once_in_three_minutes(inbox, settings):
    settings.RATE_LIMITS_ENABLED = True
    client = register()
    received(inbox, "ada@example.com", "Welcome to sidus")

    assert client.post(f"{AUTH}/email/verify/resend/").status_code == 202
    link = link_in(received(inbox, "ada@example.com", "Confirm your email address")[0], "verify-email")
    limited = client.post(f"{AUTH}/email/verify/resend/")
    assert limited.status_code == 429 and 0 < int(limited["Retry-After"]) <= 180  # a fixed 3-minute window
    assert APIClient().post(f"{AUTH}/email/verify/resend/").status_code == 401
    assert client.post(f"{AUTH}/email/verify/", link, format="json").status_code == 204


@pytest.mark.parametrize("link", [
    {"uid": "MQ", "token": "nope"}, {"uid": "!!", "token": "a-b"},
    {"uid": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "token": "x"},  # 99...9, beyond any id
])
def test_a_bad_link_is_a_400_naming_the_part_that_is_wrong(link):
    response = APIClient().post(f"{AUTH}/email/verify/", link, format="json")
    assert response.status_code == 400 and set(response.json()) <= {"uid", "token"}


# --- Password change ------------------------------------------------------------------------------


def test_password_change_answers_a_fresh_pair_and_ends_every_other_session(inbox):
    register()
    here, elsewhere = login("ada", PASSWORD), login("ada", PASSWORD)

    wrong = here.post(f"{AUTH}/password/change/", {"current_password": "guess", "new_password": NEW_PASSWORD},
                      format="json")
    assert wrong.status_code == 400 and list(wrong.json()) == ["current_password"]
    weak = here.post(f"{AUTH}/password/change/", {"current_password": PASSWORD, "new_password": "password"},
                     format="json")
    assert weak.status_code == 400 and "new_password" in weak.json()

    changed = here.post(f"{AUTH}/password/change/", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                        format="json")
    assert changed.status_code == 200 and set(changed.json()) == {"access", "refresh"}
    assert "no-store" in changed["Cache-Control"]
    for client in (here, elsewhere):  # every token issued before
        assert client.get("/api/v1/users/me/").status_code == 401
        assert client.post(f"{AUTH}/token/refresh/", {"refresh": client.refresh}, format="json").status_code == 401
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {changed.json()['access']}")
    assert fresh.get("/api/v1/users/me/").status_code == 200
    login("ada", NEW_PASSWORD)
    notice = received(inbox, "ada@example.com", "Your sidus password was changed")[0]
    assert "password reset" in text_and_html(notice)[0]


# --- Password reset -------------------------------------------------------------------------------


def test_password_reset_by_email_works_once_and_ends_every_session(inbox):
    client = register(email="Ada.Lovelace@Example.com")
    anonymous = APIClient()
    asked = anonymous.post(f"{AUTH}/password/reset/", {"email": "ada.lovelace@example.COM"}, format="json")
    unknown = anonymous.post(f"{AUTH}/password/reset/", {"email": "nobody@example.com"}, format="json")
    assert asked.status_code == unknown.status_code == 202 and asked.json() == unknown.json()

    message = received(inbox, "Ada.Lovelace@example.com", "Reset your sidus password")[0]
    link = link_in(message, "password-reset")
    assert "1 hour" in text_and_html(message)[0]
    weak = anonymous.post(f"{AUTH}/password/reset/confirm/", {**link, "new_password": "12345678"}, format="json")
    assert weak.status_code == 400 and list(weak.json()) == ["new_password"]
    done = anonymous.post(f"{AUTH}/password/reset/confirm/", {**link, "new_password": NEW_PASSWORD}, format="json")
    assert done.status_code == 204
    again = anonymous.post(f"{AUTH}/password/reset/confirm/", {**link, "new_password": "yet-another-one-9"},
                           format="json")
    assert again.status_code == 400 and "token" in again.json()

    assert client.get("/api/v1/users/me/").status_code == 401
    login("ada", NEW_PASSWORD)
    received(inbox, "Ada.Lovelace@example.com", "Your sidus password was changed")
    time.sleep(0.5)
    assert inbox.to("nobody@example.com") == []


def test_a_reset_link_expires(settings, user):
    token = links.password_reset_token.make_token(user)
    link = {"uid": links.uid_encode(user), "token": token}
    settings.PASSWORD_RESET_TIMEOUT = -1  # every link is older than that
    response = APIClient().post(f"{AUTH}/password/reset/confirm/", {**link, "new_password": NEW_PASSWORD},
                                format="json")
    assert response.status_code == 400 and "token" in response.json()
    assert User.objects.get(pk=user.pk).check_password(PASSWORD)


def test_deleted_and_inactive_users_get_no_reset_email(inbox, make_user):
    accounts.user_soft_delete(user=make_user(username="gone", email="gone@example.com"))
    make_user(username="off", email="off@example.com", is_active=False)
    make_user(username="here", email="here@example.com")
    for email in ("gone@example.com", "off@example.com", "here@example.com"):
        assert APIClient().post(f"{AUTH}/password/reset/", {"email": email}, format="json").status_code == 202
    received(inbox, "here@example.com", "Reset your sidus password")  # the worker took them in order
    assert list(OutboxEmail.objects.filter(kind=OutboxEmail.Kind.PASSWORD_RESET).values_list("to", flat=True)) == [
        "here@example.com"
    ]


def test_with_the_broker_away_a_reset_request_is_looked_up_in_the_request(user, monkeypatch, caplog):
    from kombu.exceptions import OperationalError

    from sidus.celery import app

    def broker_away(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker")

    monkeypatch.setattr(app, "send_task", broker_away)
    response = APIClient().post(f"{AUTH}/password/reset/", {"email": user.email.upper()}, format="json")
    assert response.status_code == 202
    pending = OutboxEmail.objects.get(kind=OutboxEmail.Kind.PASSWORD_RESET)  # the drain sends it later
    assert pending.status == OutboxEmail.Status.PENDING and pending.to == user.email
    assert user.email not in caplog.text


def test_a_link_is_never_sent_to_an_address_the_account_no_longer_has(user):
    from users.mail import outbox

    reset = OutboxEmail.objects.create(user=user, kind=OutboxEmail.Kind.PASSWORD_RESET, to=user.email)
    verify = OutboxEmail.objects.create(user=user, kind=OutboxEmail.Kind.VERIFY_EMAIL, to=user.email)
    User.objects.filter(pk=user.pk).update(email="moved@example.com")  # before the worker got to them

    for email in (reset, verify):
        assert outbox.email_send(email_id=email.pk) is False
        email.refresh_from_db()
        assert email.status == OutboxEmail.Status.SKIPPED


def test_reset_requests_are_limited_per_address_whatever_its_case(settings):
    settings.RATE_LIMITS_ENABLED = True
    client = APIClient()
    answers = [client.post(f"{AUTH}/password/reset/", {"email": email}, format="json").status_code
               for email in ["x@example.com", "X@example.com", "x@EXAMPLE.com", "x@example.com", "X@Example.Com",
                             "x@example.com"]]
    assert answers == [202] * 5 + [429]
    assert client.post(f"{AUTH}/password/reset/", {"email": "y@example.com"}, format="json").status_code == 202


# --- Leaving --------------------------------------------------------------------------------------


def test_leaving_needs_the_password_and_is_a_soft_delete(user, api_client):
    headers = bearer(user)
    wrong = api_client.delete("/api/v1/users/me/", {"current_password": "guess"}, format="json", **headers)
    assert wrong.status_code == 400 and list(wrong.json()) == ["current_password"]
    missing = api_client.delete("/api/v1/users/me/", format="json", **headers)
    assert missing.status_code == 400 and "current_password" in missing.json()

    left = api_client.delete("/api/v1/users/me/", {"current_password": PASSWORD}, format="json", **headers)
    assert left.status_code == 204
    stored = User.objects.get(pk=user.pk)
    assert stored.deleted_at is not None and not stored.is_active  # the row stays, as after the admin's
    assert api_client.get(f"/api/v1/users/{user.pk}/").status_code == 404
    assert api_client.get("/api/v1/users/me/", **headers).status_code == 401
    retaken = api_client.post("/api/v1/users/", {"username": user.username, "email": "other@example.com",
                                                 "password": PASSWORD}, format="json")
    assert retaken.status_code == 409


# --- The admin ------------------------------------------------------------------------------------


def test_the_admin_sends_reset_emails_to_the_selected_users(inbox, make_user, client):
    staff = make_user(username="staff", email="staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    chosen = make_user(username="chosen", email="chosen@example.com")
    gone = make_user(username="gone", email="gone@example.com")
    accounts.user_soft_delete(user=gone)

    response = client.post(reverse("admin:users_user_changelist") + "?deleted=all", {
        "action": "send_password_reset", "_selected_action": [chosen.pk, gone.pk],
    }, follow=True)
    assert "Queued a password reset email to 1 user. 1 deleted or inactive user skipped." in (
        response.content.decode())
    link = link_in(received(inbox, "chosen@example.com", "Reset your sidus password")[0], "password-reset")
    assert links.user_from_uid(link["uid"]) == chosen


# --- Passwords at rest ----------------------------------------------------------------------------


def test_the_default_hasher_is_argon2id_with_owasps_parameters(settings):
    from sidus import settings as shipped

    settings.PASSWORD_HASHERS = shipped.PASSWORD_HASHERS
    encoded = make_password(PASSWORD)
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert check_password(PASSWORD, encoded)


def test_a_pbkdf2_hash_still_logs_in_and_is_upgraded_to_argon2id(settings, make_user):
    from sidus import settings as shipped

    settings.PASSWORD_HASHERS = shipped.PASSWORD_HASHERS
    user = make_user(username="legacy", email="legacy@example.com")
    User.objects.filter(pk=user.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))

    login("legacy", PASSWORD)
    assert identify_hasher(User.objects.get(pk=user.pk).password).algorithm == "argon2"
