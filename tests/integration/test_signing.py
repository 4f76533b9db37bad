"""Tokens other services verify on their own: signed with a key pair kept in PostgreSQL, its public
half published at /.well-known/jwks.json, the key named in each token (`kid`), rotated without a
logout. Verified here with joserfc; tests/system/test_signing.py uses PyJWT's PyJWKClient. And
introspection (RFC 7662), for a service that must know at once that a session ended."""
import base64
import io
import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.management import call_command
from django.utils import timezone
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet as JoseKeySet
from jwt.algorithms import OKPAlgorithm
from rest_framework.test import APIClient
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenBackendExpiredToken

from tests.support import login
from users import accounts
from users.auth.keys import SigningKeys
from users.auth.signing import TOKEN_BACKEND, VerifiedTokens
from users.models import SigningKey
from users.runtime import current

ME = "/api/v1/users/me/"


def jwks(client: APIClient | None = None) -> dict:
    response = (client or APIClient()).get("/.well-known/jwks.json")
    assert response.status_code == 200 and response["Cache-Control"].startswith("public, max-age=")
    return response.json()


def me(token: str) -> int:
    return APIClient().get(ME, HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def read_keys_again() -> None:
    """As a worker's reader does every quarter of the bound: this process's copy made anew."""
    runtime = current()
    runtime.signing_keys = SigningKeys(runtime.db)
    runtime.signing_keys.current()


@pytest.mark.django_db
def test_a_token_verifies_with_the_published_key_set_and_says_who_and_whose(user, settings):
    access = login(None, user.username).json()["access"]
    header = jwt.get_unverified_header(access)
    published = jwks()
    assert header["alg"] == "EdDSA" and header["kid"] in [key["kid"] for key in published["keys"]]
    assert all(set(key) == {"kty", "crv", "x", "kid", "use", "alg"} for key in published["keys"])  # no "d"
    token = jose_jwt.decode(access, JoseKeySet.import_key_set(published), algorithms=["EdDSA"])
    assert token.header["kid"] == header["kid"]
    assert token.claims["sub"] == str(user.pk) and token.claims["iss"] == settings.SIMPLE_JWT["ISSUER"]
    discovery = APIClient().get("/.well-known/openid-configuration").json()
    assert discovery["issuer"] == settings.SIMPLE_JWT["ISSUER"]
    assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")
    assert discovery["id_token_signing_alg_values_supported"] == ["EdDSA"]
    etag = APIClient().get("/.well-known/jwks.json")["ETag"]
    assert APIClient().get("/.well-known/jwks.json", HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.django_db
def test_a_token_of_a_key_not_in_the_set_or_with_no_signature_is_refused(user):
    claims = jwt.decode(login(None, user.username).json()["access"], options={"verify_signature": False})
    kid = jwt.get_unverified_header(login(None, user.username).json()["access"])["kid"]
    forged = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    unsigned = jwt.encode(claims, None, algorithm="none")
    strange = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "nope"})
    for token in (forged, unsigned, strange):
        assert me(token) == 401
        with pytest.raises(JoseError):
            jose_jwt.decode(token, JoseKeySet.import_key_set(jwks()), algorithms=["EdDSA"])


@pytest.mark.django_db
def test_a_rotation_logs_nobody_out_and_the_old_key_goes_once_its_tokens_have_expired(user, settings):
    before = login(None, user.username).json()
    old = jwt.get_unverified_header(before["access"])["kid"]
    out = io.StringIO()
    call_command("signing_keys", "rotate", stdout=out)
    new = SigningKey.objects.exclude(kid=old).get()
    assert new.kid in out.getvalue() and new.signs_from > timezone.now()
    read_keys_again()
    assert new.kid in [key["kid"] for key in jwks()["keys"]]  # published before it signs
    assert jwt.get_unverified_header(login(None, user.username).json()["access"])["kid"] == old

    SigningKey.objects.filter(kid=new.kid).update(signs_from=timezone.now())  # its time has come
    read_keys_again()
    after = login(None, user.username).json()
    assert jwt.get_unverified_header(after["access"])["kid"] == new.kid
    assert me(before["access"]) == 200 and me(after["access"]) == 200  # nobody logged out
    refreshed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": before["refresh"]}, format="json")
    assert jwt.get_unverified_header(refreshed.json()["access"])["kid"] == new.kid

    assert call_command("signing_keys", "prune", stdout=io.StringIO()) is None
    assert SigningKey.objects.filter(kid=old).exists()  # its tokens may live a refresh lifetime yet
    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    handed_over = timezone.now() - lifetime - timedelta(seconds=1)  # as if a refresh lifetime had passed
    SigningKey.objects.filter(kid=old).update(signs_from=handed_over - timedelta(days=1))
    SigningKey.objects.filter(kid=new.kid).update(signs_from=handed_over)
    out = io.StringIO()
    call_command("signing_keys", "prune", stdout=out)
    assert "Deleted 1" in out.getvalue() and not SigningKey.objects.filter(kid=old).exists()
    read_keys_again()
    assert [key["kid"] for key in jwks()["keys"]] == [new.kid]
    assert me(before["access"]) == 401 and me(after["access"]) == 200
    listed = io.StringIO()
    call_command("signing_keys", "list", stdout=listed)
    assert f"{new.kid}  EdDSA" in listed.getvalue() and "signs" in listed.getvalue()


@pytest.mark.django_db
def test_a_token_is_verified_once_while_it_lives_and_its_key_does(user, monkeypatch):
    signatures = []
    verify = OKPAlgorithm.verify
    monkeypatch.setattr(OKPAlgorithm, "verify", lambda *args: signatures.append(1) or verify(*args))
    claims = jwt.decode(login(None, user.username).json()["access"], options={"verify_signature": False})
    expires = int(time.time()) + 2
    token = TOKEN_BACKEND.encode({**claims, "exp": expires})
    first = TOKEN_BACKEND.decode(token)
    first["sub"] = "someone else"  # a caller's change of its copy (a refresh changes its token's)
    assert TOKEN_BACKEND.decode(token)["sub"] == str(user.pk) and me(token) == 200
    assert len(signatures) == 1  # the same token again, as a string or as the header's bytes: not verified again
    time.sleep(expires - time.time() + 0.05)
    with pytest.raises(TokenBackendExpiredToken):
        TOKEN_BACKEND.decode(token)  # kept, but past its expiry: verified again, and refused
    assert me(token) == 401 and len(signatures) == 3
    # A kept token whose key left the key set is refused: see the rotation's test (`before`, once pruned).


def test_the_tokens_kept_are_the_latest_used_ones(monkeypatch):
    monkeypatch.setattr(VerifiedTokens, "SIZE", 3)
    verified, key, later = VerifiedTokens(), object(), time.time() + 60
    for token in "abcd":
        verified.keep(token, {"exp": later, "sub": token}, "kid", key, 0)
        verified.get("a", lambda kid: key)  # used again each time: b is the oldest when d comes
    verified.keep("never expires", {"sub": "x"}, "kid", key, 0)
    assert [t for t in "abcd" if verified.get(t, lambda kid: key)] == ["a", "c", "d"]
    assert verified.get("never expires", lambda kid: key) is None  # verified each time
    verified.keep("keyless", {"exp": later}, "kid", None, 0)  # its key left the set meanwhile
    assert verified.get("keyless", lambda kid: None) is None  # verified each time
    assert verified.get("a", lambda kid: None) is None and verified.get("a", lambda kid: key) is None


@pytest.mark.django_db
def test_the_private_key_is_kept_encrypted():
    current().signing_keys.current()  # the first key, made on first use
    key = SigningKey.objects.get()
    assert "PRIVATE KEY" not in key.private_key and "d" not in key.public_jwk


# --- Introspection (RFC 7662) ------------------------------------------------------------------------

CLIENT = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"crm:s3cret-of-the-crm").decode()}


def introspect(token: str, **extra) -> dict:
    response = APIClient().post("/api/v1/auth/introspect/", {"token": token}, format="json", **CLIENT, **extra)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def clients(settings):
    settings.INTROSPECTION_CLIENTS = {"crm": "s3cret-of-the-crm"}


@pytest.mark.django_db
def test_only_a_known_client_introspects(user, clients):
    token = login(None, user.username).json()["access"]
    for headers in ({}, {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"crm:wrong").decode()},
                    {"HTTP_AUTHORIZATION": "Basic !!!"}, {"HTTP_AUTHORIZATION": f"Bearer {token}"}):
        response = APIClient().post("/api/v1/auth/introspect/", {"token": token}, format="json", **headers)
        assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Basic")
    form = APIClient().post("/api/v1/auth/introspect/", f"token={token}",
                            content_type="application/x-www-form-urlencoded", **CLIENT)
    assert form.status_code == 200 and form.json()["active"] is True  # as RFC 7662 sends it


@pytest.mark.django_db
def test_introspection_says_what_the_api_would_for_each_way_a_session_ends(user, clients, make_user):
    pair = login(None, user.username).json()
    active = introspect(pair["access"])
    assert active["active"] is True and active["sub"] == str(user.pk) and active["token_type"] == "access"
    assert active["username"] == user.username and active["amr"] == ["pwd"] and "sid" in active
    assert introspect(pair["refresh"])["token_type"] == "refresh"
    assert introspect("not-a-token") == {"active": False}

    renewed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").json()
    assert introspect(pair["refresh"]) == {"active": False}  # used up
    assert introspect(renewed["refresh"])["active"] is True
    APIClient().post("/api/v1/auth/token/blacklist/", {"refresh": renewed["refresh"]}, format="json")
    assert introspect(renewed["access"]) == introspect(renewed["refresh"]) == {"active": False}  # logout

    other = make_user()
    pair = login(None, other.username).json()
    accounts.password_change(user=other, new_password="a-whole-new-passphrase-9")
    assert introspect(pair["access"]) == {"active": False}  # a password change
    pair = login(None, other.username, "a-whole-new-passphrase-9").json()
    accounts.sessions_end(user=other, reason="revoked")
    assert introspect(pair["access"]) == {"active": False}  # ended from elsewhere
    pair = login(None, other.username, "a-whole-new-passphrase-9").json()
    renewed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").json()
    APIClient().post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json")  # a reuse
    assert introspect(renewed["access"]) == introspect(renewed["refresh"]) == {"active": False}
    pair = login(None, other.username, "a-whole-new-passphrase-9").json()
    other.refresh_from_db()
    accounts.account_secure(user_id=other.pk, session_epoch=other.session_epoch, since=None)
    assert introspect(pair["access"]) == {"active": False}  # the owner secured the account
    other.refresh_from_db()
    pair = login(None, other.username, "a-whole-new-passphrase-9").json()
    accounts.user_soft_delete(user=other)
    assert introspect(pair["access"]) == {"active": False}  # left


# --- At the edge ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_edge_replays_djangos_key_set_until_the_keys_change(asgi_client):
    from asgiref.sync import sync_to_async

    answers = [await asgi_client.get("/.well-known/jwks.json") for _ in range(3)]
    first = answers[0]
    assert all(a.status_code == 200 and a.content == first.content and a.headers == first.headers for a in answers)
    runtime = current()
    keys = runtime.signing_keys.current(sync=False)
    assert runtime.documents.get(("jwks", False, b"localhost"), keys) is not None  # kept: the edge answers
    conditional = await asgi_client.get("/.well-known/jwks.json", headers={"If-None-Match": first.headers["etag"]})
    assert conditional.status_code == 304  # Django's to answer

    await sync_to_async(call_command)("signing_keys", "rotate", stdout=io.StringIO())
    await sync_to_async(read_keys_again)()
    rotated = await asgi_client.get("/.well-known/jwks.json")
    assert len(rotated.json()["keys"]) == 2 and rotated.headers["etag"] != first.headers["etag"]
    discovery = await asgi_client.get("/.well-known/openid-configuration", headers={"Host": "api.example.org"})
    assert discovery.status_code == 400  # not an allowed host: Django's answer, never kept
    discovery = await asgi_client.get("/.well-known/openid-configuration")
    assert discovery.json()["jwks_uri"] == "http://localhost/.well-known/jwks.json"


@pytest.mark.django_db
def test_tokens_naming_made_up_keys_cost_one_read_per_staleness_bound(user, django_assert_max_num_queries):
    claims = jwt.decode(login(None, user.username).json()["access"], options={"verify_signature": False})
    made_up = [jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": f"k{n}"})
               for n in range(20)]
    current().signing_keys.current()
    with django_assert_max_num_queries(1):  # one read for the first unknown kid, none for the other 19
        for token in made_up:
            with pytest.raises(TokenBackendError):
                TOKEN_BACKEND.decode(token)
