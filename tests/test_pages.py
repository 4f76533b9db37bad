"""The pages behind the emailed links: the API's rules, as forms a person can use without JavaScript."""
import html
import re

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from users import links
from users.models import User

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-long-new-pass-phrase"


@pytest.fixture
def ann():
    return User.objects.create_user("ann", "ann@example.com", PASSWORD)


def link(user: User, generator) -> dict[str, str]:
    return {"uid": links.uid_encode(user), "token": generator.make_token(user)}


def test_the_verification_link_shows_a_button_and_only_the_post_verifies(client: Client, ann):
    params = link(ann, links.email_verification_token)

    page = client.get("/verify-email", params)

    assert page.status_code == 200
    policy = page["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "form-action 'self'" in policy
    body = page.content.decode()
    assert '<button type="submit"' in body and "csrfmiddlewaretoken" in body and 'lang="en' in body
    assert User.objects.get(pk=ann.pk).email_verified is False  # a GET changes nothing

    done = client.post("/verify-email", params)
    assert done.status_code == 200 and "Address verified" in done.content.decode()
    assert User.objects.get(pk=ann.pk).email_verified is True
    again = client.post("/verify-email", params)
    assert "Already verified" in again.content.decode()
    made_up = client.post("/verify-email", {**params, "token": "diu2tc-0123456789abcdef0123456789abcdef"})
    assert made_up.status_code == 400  # whether someone's address is verified is not told to anyone


def test_a_bad_or_incomplete_verification_link_says_so_and_what_to_do(client: Client, ann):
    params = {**link(ann, links.email_verification_token), "token": "nope-nope"}
    for answer in (client.post("/verify-email", params), client.get("/verify-email")):
        assert answer.status_code == 400
        text = answer.content.decode()
        assert "invalid or has expired" in text and "ask for a new link" in text
    assert User.objects.get(pk=ann.pk).email_verified is False


def test_the_pages_need_their_csrf_token():
    strict = Client(enforce_csrf_checks=True)
    user = User.objects.create_user("bo", "bo@example.com", PASSWORD)
    assert strict.post("/verify-email", link(user, links.email_verification_token)).status_code == 403
    assert User.objects.get(pk=user.pk).email_verified is False


def test_the_reset_page_shows_the_rules_and_refuses_as_the_api_does(client: Client, ann):
    params = link(ann, links.password_reset_token)

    form = client.get("/password-reset", params)
    assert form.status_code == 200
    body = form.content.decode()
    assert '<label for="new_password">' in body and 'autocomplete="new-password"' in body
    assert "at least" in body  # the validators' own help texts

    for weak in ("ann", "annann-ann@example.com", "12345678901"):
        page = client.post("/password-reset", {**params, "new_password": weak})
        assert page.status_code == 400
        shown = re.findall(r"<li>([^<]+)</li>", page.content.decode().split('id="errors"')[1].split("</ul>")[0])
        api = client.post("/api/v1/auth/password/reset/confirm/", {**params, "new_password": weak},
                          content_type="application/json")
        assert [html.unescape(error) for error in shown] == api.json()["new_password"]  # the same rules and words
    assert User.objects.get(pk=ann.pk).check_password(PASSWORD)


def test_a_new_password_set_on_the_page_ends_every_session_and_the_link(client: Client, ann, api_client):
    pair = api_client.post("/api/v1/auth/token/", {"username": "ann", "password": PASSWORD}, format="json").json()
    params = link(ann, links.password_reset_token)

    done = client.post("/password-reset", {**params, "new_password": NEW_PASSWORD})

    assert done.status_code == 200 and "Password changed" in done.content.decode()
    assert User.objects.get(pk=ann.pk).check_password(NEW_PASSWORD)
    assert api_client.get("/api/v1/users/me/", HTTP_AUTHORIZATION=f"Bearer {pair['access']}").status_code == 401
    used = client.post("/password-reset", {**params, "new_password": "yet-another-pass-phrase"})
    assert used.status_code == 400 and "invalid or has expired" in used.content.decode()
    assert client.get("/password-reset", params).status_code == 400


def test_the_pages_are_rate_limited_like_the_api(client: Client, ann, settings):
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "email_verify": "2/m/ip"}
    params = {**link(ann, links.email_verification_token), "token": "bad"}
    statuses = [client.post("/verify-email", params).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]


def test_in_development_each_email_is_logged_once_as_a_person_reads_it(settings, caplog, ann):
    """The default EMAIL_URL (consolemail://): subject, recipient and the text part with its link, at INFO."""
    import logging

    from users import outbox
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
    from tests.test_signup import token_of
    from users import services
    from users.models import PendingSignup

    services.signup_request(username="cy", email="cy@example.com", password=PASSWORD)
    token = token_of(PendingSignup.objects.get(username="cy"))

    page = client.get("/confirm-signup", {"token": token})
    assert page.status_code == 200 and "Create my account" in page.content.decode()
    assert not User.objects.filter(username="cy").exists()  # a GET creates nothing

    done = client.post("/confirm-signup", {"token": token})
    assert done.status_code == 200 and "The account cy is ready" in done.content.decode()
    assert User.objects.get(username="cy").email_verified
    login = api_client.post("/api/v1/auth/token/", {"username": "cy", "password": PASSWORD}, format="json")
    assert login.status_code == 200
    again = client.post("/confirm-signup", {"token": token})
    assert again.status_code == 400 and "invalid or has expired" in again.content.decode()
    assert client.post("/confirm-signup", {"token": "made-up"}).status_code == 400


def test_a_signup_whose_name_was_taken_since_says_so(client: Client):
    from tests.test_signup import token_of
    from users import services
    from users.models import PendingSignup

    services.signup_request(username="dee", email="dee@example.com", password=PASSWORD)
    token = token_of(PendingSignup.objects.get(username="dee"))
    User.objects.create_user("dee", "other@example.com", PASSWORD)

    taken = client.post("/confirm-signup", {"token": token})

    assert taken.status_code == 409 and "Sign up again with another username" in taken.content.decode()
