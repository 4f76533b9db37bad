"""A stolen token is not the account: the address changes only with the password and the new
address's link, the old address can put itself back, and a login from a new device alerts the owner."""
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.utils import timezone
from rest_framework.test import APIClient

from tests.smtp import link_in, link_url, received, text_and_html
from tests.support import PASSWORD
from users import accounts
from users.mail import links
from users.models import EmailChange, OutboxEmail, User, UserEvent

AUTH = "/api/v1/auth"
ME = "/api/v1/users/me/"
NEW_PASSWORD = "the-thiefs-own-passphrase-3"


def client_of(user: User, password: str = PASSWORD, **extra) -> APIClient:
    client = APIClient()
    response = client.post(f"{AUTH}/token/", {"username": user.username, "password": password}, format="json",
                           **extra)
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    client.pair = response.json()
    return client


def ask(client: APIClient, new_email: str, password: str = PASSWORD):
    return client.post(f"{AUTH}/email/change/", {"new_email": new_email, "current_password": password},
                       format="json")


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def types_of(user: User) -> list[str]:
    return list(UserEvent.objects.filter(user=user).order_by("sequence").values_list("type", flat=True))


@pytest.fixture
def ada(make_user) -> User:
    return make_user(username="ada", email="ada@example.com", email_verified=True)


# --- A token alone -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_stolen_access_token_alone_cannot_make_the_account_the_thiefs(ada):
    thief = APIClient()
    thief.credentials(HTTP_AUTHORIZATION=client_of(ada)._credentials["HTTP_AUTHORIZATION"])

    moved = thief.patch(ME, {"email": "thief@evil.test"}, format="json")
    assert moved.status_code == 400 and "/api/v1/auth/email/change/" in moved.json()["email"][0]
    asked = ask(thief, "thief@evil.test", password="a-guess-at-it-1")
    assert asked.status_code == 400 and list(asked.json()) == ["current_password"]
    assert APIClient().post(f"{AUTH}/password/reset/", {"email": "thief@evil.test"}, format="json").status_code == 202

    ada.refresh_from_db()
    assert ada.email == "ada@example.com"
    assert not EmailChange.objects.exists()
    assert not OutboxEmail.objects.filter(to="thief@evil.test").exists()  # no link reaches the thief


@pytest.mark.django_db
def test_a_wrong_password_counts_as_a_failed_login(ada, settings):
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_failed": "3/5m/key", "email_change": "100/m/user"}
    client = client_of(ada)
    for _ in range(3):
        assert ask(client, "new@example.com", password="not-the-password-1").status_code == 400
    assert ask(client, "new@example.com").status_code == 429  # the right password too, as at login
    locked = APIClient().post(f"{AUTH}/token/", {"username": "ada", "password": PASSWORD}, format="json")
    assert locked.status_code == 429


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [
    ({"new_email": "ADA@example.com", "current_password": PASSWORD}, "new_email"),  # the address it has
    ({"new_email": "not-an-address", "current_password": PASSWORD}, "new_email"),
    ({"new_email": "new@example.com"}, "current_password"),
    ({"new_email": "new@example.com", "current_password": PASSWORD, "email": "x@example.com"}, "email"),
])
def test_a_bad_request_is_a_400_naming_the_field_and_changes_nothing(ada, body, field):
    response = client_of(ada).post(f"{AUTH}/email/change/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not EmailChange.objects.exists()


# --- Taken addresses, in both signup modes -----------------------------------------------------------


@pytest.mark.django_db
def test_a_taken_address_is_a_409_as_at_signup(ada, make_user):
    make_user(email="taken@example.com")
    response = ask(client_of(ada), "TAKEN@example.com")
    assert response.status_code == 409 and list(response.json()) == ["new_email"]
    assert not OutboxEmail.objects.filter(to="taken@example.com").exists()


@pytest.mark.django_db
def test_without_enumeration_a_taken_address_answers_as_a_free_one_and_its_owner_is_told(ada, make_user, settings):
    settings.SIGNUP_PREVENT_ENUMERATION = True
    owner = make_user(email="taken@example.com")
    client = client_of(ada)
    free, taken = ask(client, "free@example.com"), ask(client, "taken@example.com")
    assert free.status_code == taken.status_code == 202 and free.json() == taken.json()
    sent = OutboxEmail.objects.filter(to__in=["free@example.com", "taken@example.com"])
    kinds = dict(sent.values_list("to", "kind"))
    assert kinds == {"free@example.com": "email_change_confirm", "taken@example.com": "email_change_taken"}
    # The taken one can never be confirmed, and the free one's link died with the newer request.
    assert not EmailChange.objects.filter(confirmed_at=None, cancelled_at=None).exists()
    assert OutboxEmail.objects.get(to="taken@example.com").user == owner
    # The old PATCH told a taken address from a free one (409 or 200): it takes no address now.
    assert client.patch(ME, {"email": "taken@example.com"}, format="json").status_code == 400
    assert client.patch(ME, {"email": "unused@example.com"}, format="json").status_code == 400


# --- The links: once, the latest, never after a new password; forged or old ones are nothing ---------


def _requested(client: APIClient, new_email: str) -> EmailChange:
    assert ask(client, new_email).status_code == 202
    return EmailChange.objects.filter(new_email=new_email).latest("created_at")


def confirm_token(change: EmailChange) -> str:
    return token_of(links.email_change_confirm_link(change))


def revert_token(change: EmailChange) -> str:
    return token_of(links.email_change_revert_link(change))


def post_link(operation: str, token: str):
    return APIClient().post(f"{AUTH}/{operation}/", {"token": token}, format="json")


@pytest.mark.django_db
def test_a_confirm_link_works_once_for_the_latest_request_and_not_after_a_new_password(ada):
    client = client_of(ada)
    older = _requested(client, "older@example.com")
    change = _requested(client, "new@example.com")
    assert post_link("email/change/confirm", confirm_token(older)).status_code == 400  # superseded

    done = post_link("email/change/confirm", confirm_token(change))
    assert done.status_code == 200
    assert (done.json()["email"], done.json()["email_verified"]) == ("new@example.com", True)
    again = post_link("email/change/confirm", confirm_token(change))
    assert again.status_code == 400 and list(again.json()) == ["token"]

    later = _requested(client, "third@example.com")
    accounts.password_change(user=User.objects.get(pk=ada.pk), new_password=NEW_PASSWORD)
    assert post_link("email/change/confirm", confirm_token(later)).status_code == 400
    assert User.objects.get(pk=ada.pk).email == "new@example.com"


@pytest.mark.django_db
def test_forged_expired_and_crossed_links_do_nothing(ada, settings):
    change = _requested(client_of(ada), "new@example.com")
    token = confirm_token(change)
    forged = [token[:-2] + "xx", signing.dumps(change.pk, salt="another salt"), revert_token(change),
              signing.dumps(str(change.pk), salt="sidus.users.links.email_change.confirm"), "", "x" * 300]
    for bad in forged:
        assert post_link("email/change/confirm", bad).status_code == 400, bad
    assert post_link("email/change/revert", token).status_code == 400  # a confirm link is no revert link
    assert post_link("secure-account", token).status_code == 400
    settings.EMAIL_CHANGE_TIMEOUT = -1
    assert post_link("email/change/confirm", token).status_code == 400
    settings.EMAIL_CHANGE_TIMEOUT = 86400
    assert post_link("email/change/confirm", token).status_code == 200
    settings.EMAIL_CHANGE_REVERT_DAYS = -1
    assert post_link("email/change/revert", revert_token(change)).status_code == 400
    assert User.objects.get(pk=ada.pk).email == "new@example.com"


@pytest.mark.django_db
def test_the_revert_survives_the_thiefs_new_password_and_address_and_throws_the_thief_out(ada, make_user):
    thief = client_of(ada)  # the thief phished the password
    first = _requested(thief, "thief@evil.test")
    assert post_link("email/change/confirm", confirm_token(first)).status_code == 200
    thief = client_of(ada)
    assert thief.post(f"{AUTH}/password/change/", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                      format="json").status_code == 200
    thief = client_of(ada, NEW_PASSWORD)
    second = _requested_with(thief, "thief2@evil.test", NEW_PASSWORD)
    assert post_link("email/change/confirm", confirm_token(second)).status_code == 200
    thief = client_of(ada, NEW_PASSWORD)
    pending = _requested_with(thief, "thief3@evil.test", NEW_PASSWORD)

    reverted = post_link("email/change/revert", revert_token(first))  # from the owner's mailbox

    assert reverted.status_code == 200
    ada.refresh_from_db()
    assert (ada.email, ada.email_verified) == ("ada@example.com", True)
    assert thief.get(ME).status_code == 401  # at once: the session epoch moved on
    assert APIClient().post(f"{AUTH}/token/refresh/", {"refresh": thief.pair["refresh"]},
                            format="json").status_code == 401
    assert post_link("email/change/confirm", confirm_token(pending)).status_code == 400  # dropped
    assert post_link("email/change/revert", revert_token(first)).status_code == 400  # once
    assert OutboxEmail.objects.filter(kind="account_secured", to="ada@example.com").exists()  # a reset link
    assert types_of(ada)[-6:] == ["user.email_change_requested", "user.email_changed", "user.email_change_reverted",
                                  *["user.session_ended"] * 3]
    ended = UserEvent.objects.filter(user=ada, type="user.session_ended").order_by("-sequence")[:3]
    assert {event.data["reason"] for event in ended} == {"account_secured"}


def _requested_with(client: APIClient, new_email: str, password: str) -> EmailChange:
    assert ask(client, new_email, password).status_code == 202
    return EmailChange.objects.filter(new_email=new_email).latest("created_at")


# --- New devices ---------------------------------------------------------------------------------


PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) " \
        "Version/17.0 Mobile/15E148 Safari/604.1"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def alerts(user: User) -> int:
    return OutboxEmail.objects.filter(user=user, kind=OutboxEmail.Kind.LOGIN_ALERT).count()


@pytest.mark.django_db
def test_a_login_from_a_new_device_or_network_alerts_the_owner_and_the_first_does_not(ada, settings):
    client_of(ada, HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="192.0.2.10")
    assert alerts(ada) == 0  # the first login after signup
    client_of(ada, HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="192.0.2.99")  # the same /24
    assert alerts(ada) == 0
    client_of(ada, HTTP_USER_AGENT=PHONE, REMOTE_ADDR="192.0.2.10")  # a new device
    client_of(ada, HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="198.51.100.7")  # a new network
    assert alerts(ada) == 2
    client_of(ada, HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="2001:db8:1:2::1")
    client_of(ada, HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="2001:db8:1:2::ffff")  # the same /64
    assert alerts(ada) == 3
    alert = OutboxEmail.objects.filter(kind="login_alert").order_by("pk")[1]
    assert alert.context["network"] == "198.51.100.0/24" and alert.context["device"] == "Firefox on Linux"
    settings.LOGIN_ALERTS = False
    client_of(ada, HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="203.0.113.1")
    assert alerts(ada) == 3


@pytest.mark.django_db
def test_the_secure_account_link_ends_every_session_at_once_and_works_once(ada):
    first, second = client_of(ada, REMOTE_ADDR="192.0.2.1"), client_of(ada, REMOTE_ADDR="198.51.100.1")
    token = token_of(links.secure_account_link(ada, login_time=timezone.now()))
    done = post_link("secure-account", token)
    assert done.status_code == 200
    assert first.get(ME).status_code == second.get(ME).status_code == 401
    assert post_link("secure-account", token).status_code == 400
    assert OutboxEmail.objects.filter(kind="account_secured").count() == 1
    assert "user.account_secured" in types_of(ada)
    assert client_of(ada).get(ME).status_code == 200  # the password still logs in: the reset is the owner's


# --- Through a real worker and SMTP, as the owner and the thief would click --------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_whole_change_and_its_revert_by_email(inbox, make_user):
    ada = make_user(username="ada", email="ada@example.com", email_verified=True, first_name="Ada")
    client = client_of(ada)
    assert ask(client, "ada@new.example").status_code == 202
    requested = received(inbox, "ada@example.com", "Someone asked to change your sidus email address")[0]
    assert "ada@new.example" in text_and_html(requested)[0]
    confirm = received(inbox, "ada@new.example", "Confirm the new address of your sidus account")[0]
    assert text_and_html(confirm)[0].splitlines()[0] == "Hello,"  # an unproven address reads no name
    assert client.get(ME).json()["email"] == "ada@example.com"  # nothing changed yet

    token = link_in(confirm, "confirm-email-change")["token"]
    done = APIClient().post(f"{AUTH}/email/change/confirm/", {"token": token}, format="json")
    assert done.status_code == 200 and done.json()["email"] == "ada@new.example"
    changed = received(inbox, "ada@example.com", "Your sidus email address was changed")[0]
    revert_url = link_url(changed, "revert-email-change")

    back = APIClient().post(f"{AUTH}/email/change/revert/", {"token": token_of(revert_url)}, format="json")
    assert back.status_code == 200 and client.get(ME).status_code == 401
    reset = received(inbox, "ada@example.com", "Your sidus account is secured: choose a new password")[0]
    link = link_in(reset, "password-reset")
    assert APIClient().post(f"{AUTH}/password/reset/confirm/", {**link, "new_password": NEW_PASSWORD},
                            format="json").status_code == 204
    assert User.objects.get(pk=ada.pk).email == "ada@example.com"
    assert types_of(ada)[2:] == ["user.email_change_requested", "user.email_changed", "user.email_changed",
                                 "user.email_change_reverted", "user.session_ended", "user.password_changed"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_login_alert_arrives_with_a_link_that_secures_the_account(inbox, make_user):
    ada = make_user(username="ada", email="ada@example.com", email_verified=True)
    client_of(ada, HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="192.0.2.10")
    stranger = client_of(ada, HTTP_USER_AGENT=PHONE, REMOTE_ADDR="203.0.113.66")
    alert = received(inbox, "ada@example.com", "A new sign-in to your sidus account")[0]
    text, _ = text_and_html(alert)
    assert "Mobile Safari on iOS" in text and "203.0.113.0/24" in text
    token = link_in(alert, "secure-account")["token"]
    assert APIClient().post(f"{AUTH}/secure-account/", {"token": token}, format="json").status_code == 200
    assert stranger.get(ME).status_code == 401
    received(inbox, "ada@example.com", "Your sidus account is secured: choose a new password")


@pytest.mark.django_db
def test_the_old_address_stays_the_accounts_to_take_back_while_its_revert_link_lives(ada, make_user, settings):
    """Else the thief, once the change is made, registers the old address elsewhere and the revert is a 409."""
    change = _requested(client_of(ada), "thief@evil.test")
    assert post_link("email/change/confirm", confirm_token(change)).status_code == 200
    body = {"username": "squatter", "email": "ADA@example.com", "password": PASSWORD}
    assert APIClient().post("/api/v1/users/", body, format="json").status_code == 409
    other = client_of(make_user())
    assert ask(other, "ada@example.com").status_code == 409
    settings.SIGNUP_PREVENT_ENUMERATION = True
    assert APIClient().post("/api/v1/users/", body, format="json").status_code == 202
    assert not OutboxEmail.objects.filter(to__iexact="ada@example.com", kind="signup_confirm").exists()

    assert post_link("email/change/revert", revert_token(change)).status_code == 200
    assert User.objects.get(pk=ada.pk).email == "ada@example.com"
    settings.EMAIL_CHANGE_REVERT_DAYS = 0  # the window over: the reservation ends with it
    change.reverted_at = None
    change.save()
    assert not EmailChange.objects.reserving("ada@example.com").exists()
