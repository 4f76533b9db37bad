"""The emailed links, followed in a real browser: headless Chromium (Debian's) through Playwright.

A uvicorn worker serves the pages and is its own FRONTEND_URL, as sidus is by default; a real
Celery worker sends the emails to a real SMTP server. Each flow runs with JavaScript on and off.
`SIDUS_SCREENSHOTS=docs/screenshots python -m pytest tests/system/test_browser.py` redraws the README's
screenshots.
"""
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.servers import BROWSER_TESTS, CHROMIUM, Worker, running_workers
from tests.smtp import link_url, received
from tests.support import PASSWORD

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER_TESTS

NEW_PASSWORD = "a-long-new-pass-phrase"


@pytest.fixture(scope="module")
def browser():
    """Playwright's sync API keeps an event loop running in this thread, so Django takes every ORM
    call of the test (and the database flush after it) for one made on a loop: its guard is lifted
    while the browser runs, as Django documents for such environments. The app's own processes keep it."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with playwright.sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@contextmanager
def serving(settings, **env: str) -> Iterator[Worker]:
    """A worker serving API and pages; the emails' links point at it."""
    with running_workers(1, **env) as (worker,):
        settings.FRONTEND_URL = worker.url  # read by the Celery worker when it writes each email
        yield worker


@pytest.fixture
def site(settings, inbox):
    with serving(settings) as worker:
        yield worker


@pytest.fixture(params=[True, False], ids=["js", "no-js"])
def page(request, browser):
    context = browser.new_context(java_script_enabled=request.param, viewport={"width": 720, "height": 400})
    tab = context.new_page()
    tab.javascript = request.param
    yield tab
    context.close()


def shot(page, name: str) -> None:
    """Keep a screenshot of this state (JavaScript on) where SIDUS_SCREENSHOTS says."""
    folder = os.environ.get("SIDUS_SCREENSHOTS")
    if folder and page.javascript:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def register(site, username: str, email: str) -> str:
    """A new account, through the API; its access token."""
    created = site.client.post("/api/v1/users/", json={"username": username, "email": email, "password": PASSWORD})
    assert created.status_code == 201, created.text
    return log_in(site, username, PASSWORD).json()["access"]


def log_in(site, username: str, password: str) -> httpx.Response:
    return site.client.post("/api/v1/auth/token/", json={"username": username, "password": password})


def test_the_welcome_email_link_verifies_the_address_in_one_click(site, inbox, page):
    access = register(site, "grace", "grace@example.com")
    link = link_url(received(inbox, "grace@example.com", "Welcome to sidus")[0], "verify-email", site.url)

    page.goto(link)
    assert page.locator("h1").inner_text() == "Verify your email address"
    button = page.get_by_role("button", name="Verify my address")
    playwright.expect(button).to_be_focused()  # Enter is enough
    shot(page, "verify-email-1-button")
    me = site.client.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {access}"})
    assert me.json()["email_verified"] is False  # opening the link changed nothing

    button.click()
    assert page.locator("h1").inner_text() == "Address verified"
    assert page.get_by_role("status").inner_text() == "Thank you: your email address is verified."
    shot(page, "verify-email-2-verified")
    me = site.client.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {access}"})
    assert me.json()["email_verified"] is True

    page.goto(link)  # the same link, later
    page.get_by_role("button", name="Verify my address").click()
    assert page.locator("h1").inner_text() == "Already verified"
    shot(page, "verify-email-3-already")

    page.goto(link.replace("token=", "token=x"))
    page.get_by_role("button", name="Verify my address").click()
    assert page.get_by_role("status").inner_text() == "The link is invalid or has expired."
    assert "Log in and ask for a new link" in page.locator("main").inner_text()
    shot(page, "verify-email-4-invalid")


def test_the_reset_email_link_sets_a_new_password_that_logs_in(site, inbox, page):
    register(site, "alan", "alan@example.com")
    assert site.client.post("/api/v1/auth/password/reset/", json={"email": "alan@example.com"}).status_code == 202
    link = link_url(received(inbox, "alan@example.com", "Reset your sidus password")[0], "password-reset", site.url)

    page.goto(link)
    field = page.get_by_label("New password")
    playwright.expect(field).to_be_focused()
    assert "at least" in page.locator("#rules").inner_text()  # the validators' own rules, before any attempt
    shot(page, "password-reset-1-form")

    reveal = page.get_by_label("Show the password")
    if page.javascript:  # an enhancement: with JavaScript off there is no dead control
        field.fill("typed")
        reveal.check()
        assert field.get_attribute("type") == "text" and field.input_value() == "typed"
        reveal.uncheck()
        assert field.get_attribute("type") == "password"
    else:
        assert reveal.count() == 0
    field.fill("password")
    page.get_by_role("button", name="Set my new password").click()
    assert page.get_by_role("alert").inner_text() == "This password is too common."
    assert page.get_by_label("New password").get_attribute("aria-invalid") == "true"
    shot(page, "password-reset-2-refused")

    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set my new password").click()
    assert page.locator("h1").inner_text() == "Password changed"
    shot(page, "password-reset-3-done")
    assert log_in(site, "alan", NEW_PASSWORD).status_code == 200
    assert log_in(site, "alan", PASSWORD).status_code == 401

    page.goto(link)  # each link works once
    assert page.get_by_role("status").inner_text() == "The link is invalid or has expired."
    assert page.locator("form").count() == 0


def test_the_signup_email_link_creates_the_account_in_one_click(settings, inbox, page):
    with serving(settings, SIGNUP_PREVENT_ENUMERATION="true") as site:
        body = {"username": "lin", "email": "lin@example.com", "password": PASSWORD}
        assert site.client.post("/api/v1/users/", json=body).status_code == 202
        subject = "Confirm your address to create your sidus account"
        link = link_url(received(inbox, "lin@example.com", subject)[0], "confirm-signup", site.url)
        assert log_in(site, "lin", PASSWORD).status_code == 401  # nothing exists before the click

        page.goto(link)
        shot(page, "confirm-signup-1-button")
        page.get_by_role("button", name="Create my account").click()
        assert page.locator("h1").inner_text() == "Account created"
        shot(page, "confirm-signup-2-created")
        assert log_in(site, "lin", PASSWORD).status_code == 200

        page.goto(link)
        page.get_by_role("button", name="Create my account").click()
        assert page.get_by_role("status").inner_text() == "The link is invalid or has expired."


def test_an_address_change_is_made_and_undone_by_the_emailed_links(site, inbox, page):
    access = register(site, "ida", "ida@example.com")
    auth = {"Authorization": f"Bearer {access}"}
    asked = site.client.post("/api/v1/auth/email/change/", headers=auth,
                             json={"new_email": "ida@new.example", "current_password": PASSWORD})
    assert asked.status_code == 202
    confirm = link_url(received(inbox, "ida@new.example", "Confirm the new address of your sidus account")[0],
                       "confirm-email-change", site.url)

    page.goto(confirm)
    assert "token" not in page.url  # the link's token left the address bar at once
    assert page.locator("h1").inner_text() == "Confirm your new address"
    shot(page, "email-change-1-confirm")
    page.get_by_role("button", name="Use this address").click()
    assert page.get_by_role("status").inner_text() == "Done: ida@new.example is your account's address now."
    assert site.client.get("/api/v1/users/me/", headers=auth).json()["email"] == "ida@new.example"

    revert = link_url(received(inbox, "ida@example.com", "Your sidus email address was changed")[0],
                      "revert-email-change", site.url)
    page.goto(revert)
    page.get_by_role("button", name="Put my address back").click()
    assert page.locator("h1").inner_text() == "Put your address back"
    assert "every device is signed out" in page.get_by_role("status").inner_text()
    shot(page, "email-change-2-reverted")
    assert site.client.get("/api/v1/users/me/", headers=auth).status_code == 401
    received(inbox, "ida@example.com", "Your sidus account is secured: choose a new password")

    page.goto(revert)  # once
    page.get_by_role("button", name="Put my address back").click()
    assert page.get_by_role("status").inner_text() == "The link is invalid or has expired."
