"""Passkeys in a real browser: headless Chromium (Debian's) through Playwright, its WebAuthn calls
answered by the DevTools protocol's virtual authenticator (a platform authenticator with resident
keys and user verification). The page is http://localhost:8000, the default WEBAUTHN_ORIGINS, its
requests routed to a real uvicorn worker."""
import base64
import json

import httpx
import pytest

from tests.servers import BROWSER_TESTS, CHROMIUM, running_workers
from tests.support import PASSWORD

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = BROWSER_TESTS
ORIGIN = "http://localhost:8000"

# Each runs in the page: the options from the API, the browser's own WebAuthn, the answer back.
REGISTER = """async ([access, password]) => {
  const headers = {"Content-Type": "application/json", "Authorization": "Bearer " + access};
  const options = await (await fetch("/api/v1/auth/passkeys/registration/options/", {
    method: "POST", headers, body: JSON.stringify({current_password: password})})).json();
  const credential = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options)});
  const added = await fetch("/api/v1/auth/passkeys/", {method: "POST", headers,
    body: JSON.stringify({credential: credential.toJSON(), name: "Chromium"})});
  return [added.status, await added.json()];
}"""
LOG_IN_ALONE = """async () => {
  const options = await (await fetch("/api/v1/auth/passkeys/login/options/", {method: "POST"})).json();
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
  const answer = await fetch("/api/v1/auth/passkeys/login/", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({credential: credential.toJSON()})});
  return [answer.status, await answer.json()];
}"""
SECOND_FACTOR = """async ([username, password]) => {
  const headers = {"Content-Type": "application/json"};
  const stage = await (await fetch("/api/v1/auth/token/", {method: "POST", headers,
    body: JSON.stringify({username, password})})).json();
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(stage.passkey)});
  const answer = await fetch("/api/v1/auth/mfa/authenticate/", {method: "POST", headers,
    body: JSON.stringify({mfa_token: stage.mfa_token, credential: credential.toJSON()})});
  return [stage.code, answer.status, await answer.json()];
}"""
REMOVE = """async ([access, password, id]) => {
  const headers = {"Content-Type": "application/json", "Authorization": "Bearer " + access};
  const options = await (await fetch("/api/v1/auth/passkeys/assertion/options/", {method: "POST", headers})).json();
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options)});
  const removed = await fetch(`/api/v1/auth/passkeys/${id}/`, {method: "DELETE", headers,
    body: JSON.stringify({current_password: password, credential: credential.toJSON()})});
  return removed.status;
}"""


def amr_of(token: str) -> list[str]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["amr"]


def test_a_passkey_made_by_chromium_logs_in_alone_and_as_a_second_factor_until_it_is_removed():
    with running_workers(1, WEBAUTHN_ORIGINS=ORIGIN, WEBAUTHN_RP_ID="localhost") as (worker,), \
            playwright.sync_playwright() as driver:
        api = httpx.Client(base_url=worker.url)
        assert api.post("/api/v1/users/", json={"username": "lin", "email": "lin@example.com",
                                                "password": PASSWORD}).status_code == 201
        access = api.post("/api/v1/auth/token/", json={"username": "lin", "password": PASSWORD}).json()["access"]

        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.route(f"{ORIGIN}/**", lambda route: route.fulfill(
            response=route.fetch(url=route.request.url.replace(ORIGIN, worker.url))))
        # A blank page of that origin (sidus's own pages allow no script to fetch): the API calls are the test's.
        page.route(f"{ORIGIN}/blank", lambda route: route.fulfill(body="<!doctype html><title>-</title>",
                                                                  content_type="text/html"))
        devtools = page.context.new_cdp_session(page)
        devtools.send("WebAuthn.enable")
        devtools.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
            "isUserVerified": True, "automaticPresenceSimulation": True}})
        page.goto(f"{ORIGIN}/blank")

        status, added = page.evaluate(REGISTER, [access, PASSWORD])
        assert status == 201 and added["name"] == "Chromium" and len(added["recovery_codes"]) == 10

        status, pair = page.evaluate(LOG_IN_ALONE)  # no username, no password
        assert status == 200 and amr_of(pair["access"]) == ["hwk"]
        assert api.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {pair['access']}"}).json()[
            "username"] == "lin"

        stage, status, pair = page.evaluate(SECOND_FACTOR, ["lin", PASSWORD])
        assert stage == "mfa_required" and status == 200 and amr_of(pair["access"]) == ["pwd", "hwk"]

        assert page.evaluate(REMOVE, [pair["access"], PASSWORD, added["id"]]) == 204
        status, refused = page.evaluate(LOG_IN_ALONE)  # the authenticator still holds it; sidus does not
        assert status == 400 and list(refused) == ["credential"]
        assert api.post("/api/v1/auth/token/", json={"username": "lin", "password": PASSWORD}).status_code == 200
        browser.close()
