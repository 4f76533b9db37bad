"""The pages behind the emailed links: the API's rules, as forms a person can use without JavaScript."""
import html
import re

import pytest
from django.test import Client

from tests.support import PASSWORD
from users.mail import links
from users.models import User

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-new-pass-phrase"


@pytest.fixture
def ann():
    return User.objects.create_user("ann", "ann@example.com", PASSWORD)


def link(user: User, generator) -> dict[str, str]:
    return {"uid": links.uid_encode(user), "token": generator.make_token(user)}


def opened(client: Client, path: str, params: dict[str, str]):
    """The page an emailed link opens. Its GET keeps the link in a cookie of the page's own and
    redirects to the bare page: the token is in no later URL, nor in the page."""
    first = client.get(path, params)
    assert first.status_code == 302 and first["Location"] == path
    cookie = first.cookies["sidus_link"]
    assert cookie["httponly"] and cookie["path"] == path and cookie["samesite"] == "Lax"
    page = client.get(path)
    assert params["token"] not in page.content.decode()
    return page


def test_the_verification_link_shows_a_button_and_only_the_post_verifies(client: Client, ann):
    params = link(ann, links.email_verification_token)

    page = opened(client, "/verify-email", params)

    assert page.status_code == 200
    policy = page["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy and "form-action 'self'" in policy
    assert "<script" not in page.content.decode()  # only the reset form has its one (external) script
    body = page.content.decode()
    assert '<button type="submit"' in body and "csrfmiddlewaretoken" in body and 'lang="en' in body
    assert User.objects.get(pk=ann.pk).email_verified is False  # a GET changes nothing

    done = client.post("/verify-email")
    assert done.status_code == 200 and "Address verified" in done.content.decode()
    assert User.objects.get(pk=ann.pk).email_verified is True
    assert client.post("/verify-email").status_code == 400  # the link's cookie went with its use
    opened(client, "/verify-email", params)  # the link clicked again
    again = client.post("/verify-email")
    assert "Already verified" in again.content.decode()
    opened(client, "/verify-email", {**params, "token": "diu2tc-0123456789abcdef0123456789abcdef"})
    made_up = client.post("/verify-email")
    assert made_up.status_code == 400  # whether someone's address is verified is not told to anyone


def test_a_bad_or_incomplete_verification_link_says_so_and_what_to_do(client: Client, ann):
    opened(client, "/verify-email", {**link(ann, links.email_verification_token), "token": "nope-nope"})
    for answer in (client.post("/verify-email"), Client().get("/verify-email")):
        assert answer.status_code == 400
        text = answer.content.decode()
        assert "invalid or has expired" in text and "ask for a new link" in text
    assert User.objects.get(pk=ann.pk).email_verified is False


def test_the_pages_need_their_csrf_token():
    strict = Client(enforce_csrf_checks=True)
    user = User.objects.create_user("bo", "bo@example.com", PASSWORD)
    opened(strict, "/verify-email", link(user, links.email_verification_token))
    assert strict.post("/verify-email").status_code == 403
    assert User.objects.get(pk=user.pk).email_verified is False


def test_the_reset_page_shows_the_rules_and_refuses_as_the_api_does(client: Client, ann):
    params = link(ann, links.password_reset_token)

    form = opened(client, "/password-reset", params)
    assert form.status_code == 200
    body = form.content.decode()
    assert '<label for="new_password">' in body and 'autocomplete="new-password"' in body
    assert "at least" in body  # the validators' own help texts

    for weak in ("ann", "annann-ann@example.com", "12345678901"):
        page = client.post("/password-reset", {"new_password": weak})
        assert page.status_code == 400
        shown = re.findall(r"<li>([^<]+)</li>", page.content.decode().split('id="errors"')[1].split("</ul>")[0])
        api = client.post("/api/v1/auth/password/reset/confirm/", {**params, "new_password": weak},
                          content_type="application/json")
        assert [html.unescape(error) for error in shown] == api.json()["new_password"]  # the same rules and words
    assert User.objects.get(pk=ann.pk).check_password(PASSWORD)


def test_a_new_password_set_on_the_page_ends_every_session_and_the_link(client: Client, ann, api_client):
    pair = api_client.post("/api/v1/auth/token/", {"username": "ann", "password": PASSWORD}, format="json").json()
    params = link(ann, links.password_reset_token)
    opened(client, "/password-reset", params)

    done = client.post("/password-reset", {"new_password": NEW_PASSWORD})

    assert done.status_code == 200 and "Password changed" in done.content.decode()
    assert User.objects.get(pk=ann.pk).check_password(NEW_PASSWORD)
    assert api_client.get("/api/v1/users/me/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}").status_code == 401
    assert opened(client, "/password-reset", params).status_code == 400  # the link clicked again
    used = client.post("/password-reset", {"new_password": "yet-another-pass-phrase"})
    assert used.status_code == 400 and "invalid or has expired" in used.content.decode()


def test_the_pages_are_rate_limited_like_the_api(client: Client, ann, settings):
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "email_verify": "2/m/ip"}
    opened(client, "/verify-email", {**link(ann, links.email_verification_token), "token": "bad"})
    statuses = [client.post("/verify-email").status_code for _ in range(3)]
    assert statuses == [400, 400, 429]


def test_in_development_each_email_is_logged_once_as_a_person_reads_it(settings, caplog, ann):
    """The default EMAIL_URL (consolemail://): subject, recipient and the text part with its link, at INFO."""
    import logging

    from users.mail import outbox
    from users.models import OutboxEmail

    settings.EMAIL_BACKEND = "sidus.mail.ReadableConsoleBackend"
    email = OutboxEmail.objects.create(user=ann, kind=OutboxEmail.Kind.VERIFY_EMAIL, to=ann.email)
    with caplog.at_level(logging.INFO, logger="sidus.mail"):
        assert outbox.email_send(email_id=email.pk)

    (record,) = [r for r in caplog.records if r.name == "sidus.mail"]
    text = record.getMessage()
    assert record.levelno == logging.INFO and text.startswith("Email to ann@example.com: ")
    assert f"{settings.FRONTEND_URL}/verify-email?uid=" in text and "<html" not in text and "Content-Type" not in text


def test_the_signup_link_creates_the_account_with_one_click(client: Client, api_client):
    from tests.support import signup_token as token_of
    from users import accounts
    from users.models import PendingSignup

    accounts.signup_request(username="cy", email="cy@example.com", password=PASSWORD)
    token = token_of(PendingSignup.objects.get(username="cy"))

    page = opened(client, "/confirm-signup", {"token": token})
    assert page.status_code == 200 and "Create my account" in page.content.decode()
    assert not User.objects.filter(username="cy").exists()  # a GET creates nothing

    done = client.post("/confirm-signup")
    assert done.status_code == 200 and "The account cy is ready" in done.content.decode()
    assert User.objects.get(username="cy").email_verified
    login = api_client.post("/api/v1/auth/token/", {"username": "cy", "password": PASSWORD}, format="json")
    assert login.status_code == 200
    opened(client, "/confirm-signup", {"token": token})
    again = client.post("/confirm-signup")
    assert again.status_code == 400 and "invalid or has expired" in again.content.decode()
    opened(client, "/confirm-signup", {"token": "made-up"})
    assert client.post("/confirm-signup").status_code == 400


def test_a_signup_whose_name_was_taken_since_says_so(client: Client):
    from tests.support import signup_token as token_of
    from users import accounts
    from users.models import PendingSignup

    accounts.signup_request(username="dee", email="dee@example.com", password=PASSWORD)
    token = token_of(PendingSignup.objects.get(username="dee"))
    User.objects.create_user("dee", "other@example.com", PASSWORD)

    opened(client, "/confirm-signup", {"token": token})
    taken = client.post("/confirm-signup")

    assert taken.status_code == 409 and "Sign up again with another username" in taken.content.decode()


def test_a_link_posted_with_its_token_in_the_form_or_the_url_is_not_taken_from_there(client: Client, ann):
    """Only the page's cookie carries a link: a token in a POST's body or query proves nothing."""
    params = link(ann, links.email_verification_token)
    assert client.post("/verify-email", params).status_code == 400
    assert client.post("/verify-email?" + "&".join(f"{k}={v}" for k, v in params.items())).status_code == 400
    assert User.objects.get(pk=ann.pk).email_verified is False


def test_the_front_door_says_what_sidus_is_and_links_its_parts(client: Client, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        page = client.get("/")
        icon = client.get("/favicon.ico")
    assert page.status_code == 200 and "user service" in page.content.decode()
    for link in ("/api/docs/", "/api/schema/", "/admin/", "/health/"):
        assert f'href="{link}"' in page.content.decode()
    assert "default-src 'none'" in page["Content-Security-Policy"]
    assert icon.status_code == 301 and icon["Location"].endswith("users/favicon.svg")
    assert client.get(icon["Location"]).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no "Not Found: /favicon.ico"
