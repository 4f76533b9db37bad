"""Every operation of the API docs succeeds as given against a live server, rate limits on.

They are sent in the order of their story (users/api/examples.py), as a person would press "Try it out"
in Swagger: the Authorization header goes only where the schema asks for it, a body is the
operation's one example with only its `<...>` values filled in, from the answers and links they
name, and a path parameter is the id an earlier answer gave. The README's walk-through runs first,
with curl, on the same database: a newcomer does both.
"""
import base64
import re
import subprocess
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from django.utils import timezone

from tests.authenticator import SoftAuthenticator
from tests.servers import ROOT, Worker, running_workers
from users.mail import links
from users.models import EmailChange, PendingSignup, User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PLACEHOLDER = re.compile(r"^<.+>$")
INTROSPECTION_CLIENT = "story:the-story-client-secret"


class Story:
    """Sends the schema's examples, each once or more, to one worker."""

    def __init__(self, worker: Worker) -> None:
        self.client = worker.client
        schema = self.client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}).json()
        self.operations = {f"{method.upper()} {path}": operation
                           for path, methods in schema["paths"].items() for method, operation in methods.items()}
        self.access = ""
        self.sent: set[str] = set()

    def send(self, name: str, status: int, path: str = "", **filled: str) -> httpx.Response:
        operation = self.operations[name]
        body = None
        if "requestBody" in operation:  # its one example
            (example,) = operation["requestBody"]["content"]["application/json"]["examples"].values()
            body = dict(example["value"])
        placeholders = {key for key, value in (body or {}).items()
                        if isinstance(value, str) and PLACEHOLDER.match(value)}
        assert placeholders == set(filled), name  # nothing but the `<...>` values is changed
        assert str(status) in operation["responses"], name  # the documented success
        if body is not None:
            body.update(filled)
        bearer = {"jwtAuth": []} in operation.get("security", [])  # what Swagger's Authorize sends
        headers = {"Authorization": f"Bearer {self.access}"} if bearer else {}
        if {"introspectionClient": []} in operation.get("security", []):
            headers = {"Authorization": "Basic " + base64.b64encode(INTROSPECTION_CLIENT.encode()).decode()}
        method, template = name.split(" ", 1)
        response = self.client.request(method, path or template, json=body, headers=headers)
        assert response.status_code == status, (name, response.text)
        self.sent.add(name)
        return response


def signed(url: str) -> str:
    """The token of an emailed link made by users.mail.links."""
    return parse_qs(urlsplit(url).query)["token"][0]


def link(user: User, generator) -> dict[str, str]:
    return {"uid": links.uid_encode(user), "token": generator.make_token(user)}


def readme_walk_through(worker: Worker) -> str:
    """The README's "Try it" block, run by bash against `worker`: its output."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Try it", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    assert "API=http://localhost:8000/api/v1" in block
    block = block.replace("API=http://localhost:8000/api/v1", f"API={worker.url}/api/v1")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_every_operation_succeeds_as_given_in_the_order_of_its_story():
    with running_workers(1, RATE_LIMITS_ENABLED="true", WEBAUTHN_ORIGINS=SoftAuthenticator().origin,
                         INTROSPECTION_CLIENTS=INTROSPECTION_CLIENT) as (worker,):
        walked = readme_walk_through(worker)
        assert '"username": "ada"' in walked and '"bio": "Wrote the first program."' in walked
        assert "x-cache:" in walked.lower()
        story = Story(worker)
        grace = story.send("POST /api/v1/users/", 201).json()
        me = f"/api/v1/users/{grace['id']}/"
        pair = story.send("POST /api/v1/auth/token/", 200).json()
        pair = story.send("POST /api/v1/auth/token/refresh/", 200, refresh=pair["refresh"]).json()
        story.access = pair["access"]
        assert story.send("PATCH /api/v1/users/me/", 200).json()["bio"].startswith("Rear admiral")
        story.send("PATCH /api/v1/users/{id}/", 200, path=me)
        assert story.send("GET /api/v1/users/me/", 200).json()["email"] == grace["email"]
        assert story.send("GET /api/v1/users/{id}/", 200, path=me).json()["username"] == grace["username"]

        user = User.objects.get(pk=grace["id"])
        story.send("POST /api/v1/auth/email/verify/resend/", 202)
        story.send("POST /api/v1/auth/email/verify/", 204, **link(user, links.email_verification_token))
        story.access = story.send("POST /api/v1/auth/password/change/", 200).json()["access"]
        story.send("POST /api/v1/auth/password/reset/", 202)
        user.refresh_from_db()
        story.send("POST /api/v1/auth/password/reset/confirm/", 204, **link(user, links.password_reset_token))

        # The first password again, on a phone, a tablet and a laptop.
        others = [story.send("POST /api/v1/auth/token/", 200).json() for _ in range(2)]
        pair = story.send("POST /api/v1/auth/token/", 200).json()
        story.access = pair["access"]
        sessions = story.send("GET /api/v1/auth/sessions/", 200).json()["results"]
        one = next(s["id"] for s in sessions if not s["current"])
        story.send("DELETE /api/v1/auth/sessions/{session_id}/", 204, path=f"/api/v1/auth/sessions/{one}/")
        story.send("DELETE /api/v1/auth/sessions/", 204)  # the other one
        log = story.send("GET /api/v1/users/me/events/", 200).json()["results"]
        assert [event["type"] for event in log[:2]] == ["user.session_ended"] * 2
        assert story.send("POST /api/v1/auth/introspect/", 200, token=pair["access"]).json()["active"] is True
        story.send("POST /api/v1/auth/token/blacklist/", 200, refresh=pair["refresh"])
        for other in others:  # both ended
            refreshed = worker.client.post("/api/v1/auth/token/refresh/", json={"refresh": other["refresh"]})
            assert refreshed.status_code == 401
        # A new address: asked with the password, made by its link, undone by the old address's.
        story.access = story.send("POST /api/v1/auth/token/", 200).json()["access"]
        story.send("POST /api/v1/auth/email/change/", 202)
        change = EmailChange.objects.get(user_id=grace["id"])
        moved = story.send("POST /api/v1/auth/email/change/confirm/", 200, token=signed(
            links.email_change_confirm_link(change))).json()
        assert moved["email"] == "grace@hopper.example"
        story.send("POST /api/v1/auth/email/change/revert/", 200, token=signed(links.email_change_revert_link(change)))
        assert worker.client.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {story.access}"}
                                 ).status_code == 401  # every session ended
        user.refresh_from_db()
        story.send("POST /api/v1/auth/secure-account/", 200,
                   token=signed(links.secure_account_link(user, login_time=timezone.now())))
        story.access = story.send("POST /api/v1/auth/token/", 200).json()["access"]
        # A second factor: an app and its recovery codes, a passkey (a software authenticator), at login.
        setup = story.send("POST /api/v1/auth/mfa/totp/", 200).json()
        codes = story.send("POST /api/v1/auth/mfa/totp/confirm/", 200,
                           code=pyotp.TOTP(setup["secret"]).now()).json()["recovery_codes"]
        assert story.send("GET /api/v1/auth/mfa/", 200).json()["totp"]["enabled"] is True
        codes = story.send("POST /api/v1/auth/mfa/recovery-codes/", 200, code=codes[0]).json()["recovery_codes"]
        options = story.send("POST /api/v1/auth/passkeys/registration/options/", 200, code=codes[0]).json()
        device = SoftAuthenticator()
        passkey = story.send("POST /api/v1/auth/passkeys/", 201, credential=device.create(options)).json()
        path = f"/api/v1/auth/passkeys/{passkey['id']}/"
        assert story.send("PATCH /api/v1/auth/passkeys/{passkey_id}/", 200, path=path).json()["name"] == "work laptop"
        stage = story.send("POST /api/v1/auth/token/", 401).json()
        assert stage["code"] == "mfa_required" and stage["methods"] == ["totp", "recovery_code", "passkey"]
        story.access = story.send("POST /api/v1/auth/mfa/authenticate/", 200, mfa_token=stage["mfa_token"],
                                  code=codes[1]).json()["access"]
        options = story.send("POST /api/v1/auth/passkeys/login/options/", 200).json()
        story.send("POST /api/v1/auth/passkeys/login/", 200, credential=device.get(options))
        story.send("POST /api/v1/auth/passkeys/assertion/options/", 200)
        story.send("DELETE /api/v1/auth/passkeys/{passkey_id}/", 204, path=path, code=codes[2])
        story.send("DELETE /api/v1/auth/mfa/totp/", 204, code=codes[3])
        story.send("DELETE /api/v1/users/me/", 204)
        assert worker.client.get(me).status_code == 404

        assert set(story.operations) - story.sent == {"POST /api/v1/auth/signup/confirm/"}  # the next test's


def test_the_signup_examples_succeed_as_given_when_signups_tell_nobody_who_has_an_account():
    with running_workers(1, RATE_LIMITS_ENABLED="true", SIGNUP_PREVENT_ENUMERATION="true") as (worker,):
        story = Story(worker)
        story.send("POST /api/v1/users/", 202)
        token = signed(links.signup_link(PendingSignup.objects.get()))
        grace = story.send("POST /api/v1/auth/signup/confirm/", 201, token=token).json()
        assert (grace["username"], grace["email_verified"]) == ("grace", True)
