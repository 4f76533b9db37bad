"""The OpenAPI schema against the running server: schemathesis (`--checks all`) finds nothing.

One uvicorn worker with production settings; two runs, without a token (rate limits on, as
shipped) and with one (rate limits off, so that the fuzzer reaches the handlers behind them).
"""
import os
import re
import subprocess
import sys
import tempfile

import pytest

from tests.servers import ROOT, running_workers, wait_until
from users.auth.tokens import token_pair
from users.models import User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

EXAMPLES = "40"
SEED = "20261128"


def schemathesis(base_url: str, *args: str) -> tuple[int, str]:
    command = [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
               "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run",
               f"{base_url}/api/schema/", "--checks", "all", "--max-examples", EXAMPLES, "--seed", SEED,
               "--continue-on-failure", "--no-color", *args]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as scratch:  # its cache of crashes stays out of the checkout
        result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=scratch, env=env)
    return result.returncode, result.stdout + result.stderr


def assert_no_failures(code: int, output: str) -> None:
    assert code == 0, output[-6000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases and int(cases.group(1)) >= 300, output[-2000:]  # it did run, and not a handful
    print(f"schemathesis: {cases.group(0)}")


@pytest.fixture
def schema(client) -> dict:
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_has_its_own_summary_and_description(schema):
    seen = set()
    for name, operation in operations(schema):
        assert operation.get("summary") and operation.get("description"), name
        assert "This is the magic" not in operation["description"], name
        seen.add(operation["summary"])
    assert len(seen) == len(list(operations(schema)))


def test_every_operation_documents_its_errors_with_a_body(schema):
    expected = {
        "POST /api/v1/users/": {"201", "202", "400", "409", "413", "415", "429", "503"},
        "GET /api/v1/users/{id}/": {"200", "304", "404", "503"},
        "PATCH /api/v1/users/{id}/": {"200", "400", "401", "403", "404", "409", "412", "413", "415", "429", "503"},
        "GET /api/v1/users/me/": {"200", "401", "503"},
        "PATCH /api/v1/users/me/": {"200", "400", "401", "409", "412", "413", "415", "429", "503"},
        "POST /api/v1/auth/token/": {"200", "400", "401", "413", "415", "429", "503"},
        "POST /api/v1/auth/token/refresh/": {"200", "400", "401", "413", "415", "429", "503"},
        "POST /api/v1/auth/token/blacklist/": {"200", "400", "401", "413", "415", "503"},
        "POST /api/v1/auth/introspect/": {"200", "400", "401", "413", "415", "503"},
        "DELETE /api/v1/users/me/": {"204", "400", "401", "413", "415", "429", "503"},
        "POST /api/v1/auth/password/change/": {"200", "400", "401", "413", "415", "429", "503"},
        "POST /api/v1/auth/password/reset/": {"202", "400", "413", "415", "429", "503"},
        "POST /api/v1/auth/password/reset/confirm/": {"204", "400", "413", "415", "429", "503"},
        "POST /api/v1/auth/email/verify/": {"204", "400", "413", "415", "429", "503"},
        "POST /api/v1/auth/email/verify/resend/": {"202", "401", "429", "503"},
        "POST /api/v1/auth/signup/confirm/": {"201", "400", "409", "413", "415", "429", "503"},
        "GET /api/v1/auth/sessions/": {"200", "401", "404", "429", "503"},
        "DELETE /api/v1/auth/sessions/": {"204", "400", "401", "413", "415", "429", "503"},
        "DELETE /api/v1/auth/sessions/{session_id}/": {"204", "401", "404", "409", "429", "503"},
        "GET /api/v1/users/me/events/": {"200", "401", "404", "429", "503"},
        "POST /api/v1/auth/email/change/": {"202", "400", "401", "409", "413", "415", "429", "503"},
        "POST /api/v1/auth/email/change/confirm/": {"200", "400", "409", "413", "415", "429", "503"},
        "POST /api/v1/auth/email/change/revert/": {"200", "400", "409", "413", "415", "429", "503"},
        "POST /api/v1/auth/secure-account/": {"200", "400", "413", "415", "429", "503"},
        # Second factors (issue 31)
        "GET /api/v1/auth/mfa/": {"200", "401", "429", "503"},
        "POST /api/v1/auth/mfa/totp/": {"200", "400", "401", "409", "413", "415", "429", "503"},
        "DELETE /api/v1/auth/mfa/totp/": {"204", "400", "401", "409", "413", "415", "429", "503"},
        "POST /api/v1/auth/mfa/totp/confirm/": {"200", "400", "401", "409", "413", "415", "429", "503"},
        "POST /api/v1/auth/mfa/recovery-codes/": {"200", "400", "401", "409", "413", "415", "429", "503"},
        "POST /api/v1/auth/mfa/authenticate/": {"200", "400", "413", "415", "429", "503"},
        "POST /api/v1/auth/passkeys/": {"201", "400", "401", "409", "413", "415", "429", "503"},
        "PATCH /api/v1/auth/passkeys/{passkey_id}/": {"200", "400", "401", "404", "413", "415", "429", "503"},
        "DELETE /api/v1/auth/passkeys/{passkey_id}/": {"204", "400", "401", "404", "413", "415", "429", "503"},
        "POST /api/v1/auth/passkeys/registration/options/": {"200", "400", "401", "413", "415", "429", "503"},
        "POST /api/v1/auth/passkeys/assertion/options/": {"200", "401", "409", "429", "503"},
        "POST /api/v1/auth/passkeys/login/options/": {"200", "429", "503"},
        "POST /api/v1/auth/passkeys/login/": {"200", "400", "413", "415", "429", "503"},
    }
    assert {name: set(operation["responses"]) for name, operation in operations(schema)} == expected
    for name, operation in operations(schema):
        for status, response in operation["responses"].items():
            assert status in ("204", "304") or "application/json" in response.get("content", {}), (name, status)
        if "429" in operation["responses"]:
            assert "Retry-After" in operation["responses"]["429"]["headers"], name


def test_request_bodies_are_closed_and_the_password_rules_visible(schema):
    components = schema["components"]["schemas"]
    for name, operation in operations(schema):
        if "requestBody" in operation:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert components[ref.rsplit("/", 1)[-1]]["additionalProperties"] is False, name
    password = components["UserCreateRequest"]["properties"]["password"]
    assert password["minLength"] == 8 and password["maxLength"] == 128
    assert "commonly used" in password["description"] and "numeric" in password["description"]


def production_settings(**extra: str) -> dict[str, str]:
    return {"DJANGO_DEBUG": "false", "DJANGO_SETTINGS_MODULE": "sidus.settings", **extra}


def test_schemathesis_finds_nothing_without_a_token():
    from django.conf import settings

    env = production_settings(RATE_LIMITS_ENABLED="true", REDIS_URL=settings.REDIS_URL,
                              DJANGO_SECRET_KEY="contract-test-secret-key-0123456789-abcdefghijklmnop")
    with running_workers(1, **env) as (worker,):
        wait_until(lambda: worker.client.get("/health/").status_code == 200)
        assert_no_failures(*schemathesis(worker.url))
        assert "Traceback" not in worker.output()


def test_schemathesis_finds_nothing_with_a_token():
    from django.conf import settings

    user = User.objects.create_user("contract", "contract@example.com", "correct-horse-battery-9")
    access = token_pair(user)["access"]
    env = production_settings(RATE_LIMITS_ENABLED="false", REDIS_URL=settings.REDIS_URL,
                              DJANGO_SECRET_KEY=settings.SECRET_KEY)
    with running_workers(1, **env) as (worker,):
        wait_until(lambda: worker.client.get("/health/").status_code == 200)
        code, output = schemathesis(worker.url, "-H", f"Authorization: Bearer {access}")
        assert_no_failures(code, output)
        # The token opened the private operations. A refresh token, sent in a body, no fuzzer can make up;
        # introspection takes a service's Basic credentials, not a user's token.
        refused = re.search(r"401 Unauthorized \(\d+ operations?\):\n((?:  - .+\n)+)", output)
        assert set(re.findall(r"  - (.+)", refused.group(1) if refused else "")) <= {
            "POST /api/v1/auth/token/refresh/", "POST /api/v1/auth/introspect/"}, output[-3000:]
        assert "Traceback" not in worker.output()


def test_swagger_opens_on_registration_with_the_operations_grouped_by_tag_in_story_order(schema):
    from users.api.examples import STORY, TAGS

    assert [tag["name"] for tag in schema["tags"]] == list(TAGS)
    names = [name for name, _ in operations(schema)]
    assert names[0] == "POST /api/v1/users/" and set(names) == {operation for _, operation in STORY}
    for name, operation in operations(schema):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in TAGS, name
    # In each tag, the operations as the story calls them (a path's methods stay together).
    for tag in TAGS:
        in_schema = [name for name, operation in operations(schema) if operation["tags"] == [tag]]
        in_story = [operation for name, operation in STORY if name == tag]
        assert sorted(in_schema) == sorted(in_story)
