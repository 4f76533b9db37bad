"""Another service verifies a sidus token by itself, as its docs tell it to: PyJWT's PyJWKClient
fetching a live worker's /.well-known/jwks.json; and a rotation under load, across workers."""
import base64
import time

import jwt
import pytest

from tests.servers import running_workers
from tests.support import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_pyjwkclient_verifies_a_token_with_the_published_keys_and_refuses_a_forged_one():
    with running_workers(1) as (worker,):
        worker.client.post("/api/v1/users/", json={"username": "lin", "email": "lin@example.com",
                                                   "password": PASSWORD})
        access = worker.client.post("/api/v1/auth/token/", json={"username": "lin", "password": PASSWORD}
                                    ).json()["access"]
        discovery = worker.client.get("/.well-known/openid-configuration").json()
        client = jwt.PyJWKClient(f"{worker.url}/.well-known/jwks.json")
        key = client.get_signing_key_from_jwt(access)
        claims = jwt.decode(access, key.key, algorithms=discovery["id_token_signing_alg_values_supported"],
                            issuer=discovery["issuer"])
        assert claims["sub"] == str(worker.client.get(
            "/api/v1/users/me/", headers={"Authorization": f"Bearer {access}"}).json()["id"])
        assert key.key_id == jwt.get_unverified_header(access)["kid"]
        forged = jwt.encode(claims, None, algorithm="none")
        with pytest.raises(jwt.PyJWTError):
            jwt.decode(forged, key.key, algorithms=discovery["id_token_signing_alg_values_supported"])


def test_a_rotation_under_load_refuses_no_valid_token():
    """Tokens made on one worker are read on another while a new key is published, then signs."""
    from users.auth.keys import key_rotate

    with running_workers(2) as (issuer, reader):
        issuer.client.post("/api/v1/users/", json={"username": "kim", "email": "kim@example.com",
                                                   "password": PASSWORD})
        kids, refused, rotated, deadline = set(), [], None, time.monotonic() + 5
        while time.monotonic() < deadline:
            if rotated is None and time.monotonic() > deadline - 4:
                rotated = key_rotate()
            access = issuer.client.post("/api/v1/auth/token/", json={"username": "kim", "password": PASSWORD}
                                        ).json()["access"]
            kids.add(jwt.get_unverified_header(access)["kid"])
            for worker in (reader, issuer):
                answer = worker.client.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {access}"})
                if answer.status_code != 200:
                    refused.append(answer.status_code)
        assert refused == [] and rotated.kid in kids and len(kids) == 2


def test_hs256_remains_for_a_single_service_and_publishes_nothing():
    with running_workers(1, JWT_ALGORITHM="HS256") as (worker,):
        worker.client.post("/api/v1/users/", json={"username": "ola", "email": "ola@example.com",
                                                   "password": PASSWORD})
        access = worker.client.post("/api/v1/auth/token/", json={"username": "ola", "password": PASSWORD}
                                    ).json()["access"]
        assert jwt.get_unverified_header(access) == {"alg": "HS256", "typ": "JWT"}
        assert worker.client.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {access}"}
                                 ).status_code == 200
        assert worker.client.get("/.well-known/jwks.json").json() == {"keys": []}


def test_introspection_on_another_worker_hears_of_an_ended_session_within_the_bound():
    basic = "Basic " + base64.b64encode(b"crm:the-crm-secret").decode()
    with running_workers(2, INTROSPECTION_CLIENTS="crm:the-crm-secret") as (one, other):
        one.client.post("/api/v1/users/", json={"username": "ivy", "email": "ivy@example.com", "password": PASSWORD})
        pair = one.client.post("/api/v1/auth/token/", json={"username": "ivy", "password": PASSWORD}).json()

        def active() -> bool:
            answer = other.client.post("/api/v1/auth/introspect/", json={"token": pair["access"]},
                                       headers={"Authorization": basic})
            return answer.json()["active"]

        assert active() is True
        one.client.post("/api/v1/auth/token/blacklist/", json={"refresh": pair["refresh"]})
        ended = time.monotonic()
        while active():
            assert time.monotonic() - ended < 1.0, "still active after USER_CACHE_MAX_STALENESS"
            time.sleep(0.02)


def test_keys_from_a_secret_store_sign_and_are_published_and_rotate_there():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with running_workers(1, JWT_SIGNING_KEYS=pem) as (worker,):
        worker.client.post("/api/v1/users/", json={"username": "eve", "email": "eve@example.com",
                                                   "password": PASSWORD})
        access = worker.client.post("/api/v1/auth/token/", json={"username": "eve", "password": PASSWORD}
                                    ).json()["access"]
        published = worker.client.get("/.well-known/jwks.json").json()["keys"]
        assert [key["kid"] for key in published] == [jwt.get_unverified_header(access)["kid"]]
        assert worker.client.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {access}"}
                                 ).status_code == 200
