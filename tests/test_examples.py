"""Every request example of the API docs succeeds as given against a live server, rate limits on.

They are sent in the order of their story (users/examples.py), as a person would press "Try it out"
in Swagger: the Authorization header goes only where the schema asks for it, and only the `<...>`
values are filled in, from the answers and links they name.
"""
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.servers import Worker, running_workers
from users import links
from users.models import PendingSignup, User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PLACEHOLDER = re.compile(r"^<.+>$")


class Story:
    """Sends the schema's examples, each once or more, to one worker."""

    def __init__(self, worker: Worker) -> None:
        self.client = worker.client
        schema = self.client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}).json()
        self.operations = {f"{method.upper()} {path}": operation
                           for path, methods in schema["paths"].items() for method, operation in methods.items()}
        self.access = ""
        self.sent: set[str] = set()

    def examples(self) -> set[str]:
        """The operations with a request body; each must have one example."""
        return {name for name, operation in self.operations.items() if "requestBody" in operation}

    def send(self, name: str, status: int, path: str = "", **filled: str) -> httpx.Response:
        operation = self.operations[name]
        (example,) = operation["requestBody"]["content"]["application/json"]["examples"].values()
        body = dict(example["value"])
        placeholders = {key for key, value in body.items() if isinstance(value, str) and PLACEHOLDER.match(value)}
        assert placeholders == set(filled), name  # nothing but the `<...>` values is changed
        body.update(filled)
        bearer = {"jwtAuth": []} in operation.get("security", [])  # what Swagger's Authorize sends
        headers = {"Authorization": f"Bearer {self.access}"} if bearer else {}
        method, template = name.split(" ", 1)
        response = self.client.request(method, path or template, json=body, headers=headers)
        assert response.status_code == status, (name, response.text)
        self.sent.add(name)
        return response


def link(user: User, generator) -> dict[str, str]:
    return {"uid": links.uid_encode(user), "token": generator.make_token(user)}


def test_every_example_succeeds_as_given_in_the_order_of_its_story():
    with running_workers(1, RATE_LIMITS_ENABLED="true") as (worker,):
        story = Story(worker)
        ada = story.send("POST /api/v1/users/", 201).json()
        pair = story.send("POST /api/v1/auth/token/", 200).json()
        pair = story.send("POST /api/v1/auth/token/refresh/", 200, refresh=pair["refresh"]).json()
        story.access = pair["access"]
        assert story.send("PATCH /api/v1/users/me/", 200).json()["bio"].startswith("Mathematician")
        story.send("PATCH /api/v1/users/{id}/", 200, path=f"/api/v1/users/{ada['id']}/")

        user = User.objects.get(pk=ada["id"])
        story.send("POST /api/v1/auth/email/verify/", 204, **link(user, links.email_verification_token))
        story.access = story.send("POST /api/v1/auth/password/change/", 200).json()["access"]
        story.send("POST /api/v1/auth/password/reset/", 202)
        user.refresh_from_db()
        story.send("POST /api/v1/auth/password/reset/confirm/", 204, **link(user, links.password_reset_token))

        pair = story.send("POST /api/v1/auth/token/", 200).json()  # the first password again
        story.send("POST /api/v1/auth/token/blacklist/", 200, refresh=pair["refresh"])
        story.access = story.send("POST /api/v1/auth/token/", 200).json()["access"]
        story.send("DELETE /api/v1/users/me/", 204)
        assert worker.client.get(f"/api/v1/users/{ada['id']}/").status_code == 404

        assert story.examples() - story.sent == {"POST /api/v1/auth/signup/confirm/"}  # the next test's


def test_the_signup_examples_succeed_as_given_when_signups_tell_nobody_who_has_an_account():
    with running_workers(1, RATE_LIMITS_ENABLED="true", SIGNUP_PREVENT_ENUMERATION="true") as (worker,):
        story = Story(worker)
        story.send("POST /api/v1/users/", 202)
        url = links.signup_link(PendingSignup.objects.get())
        token = parse_qs(urlsplit(url).query)["token"][0]
        ada = story.send("POST /api/v1/auth/signup/confirm/", 201, token=token).json()
        assert (ada["username"], ada["email_verified"]) == ("ada", True)
