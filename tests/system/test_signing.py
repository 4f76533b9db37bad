"""Another service verifies a sidus token by itself, as its docs tell it to: PyJWT's PyJWKClient
fetching a live worker's /.well-known/jwks.json."""
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
