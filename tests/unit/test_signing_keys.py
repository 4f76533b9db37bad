"""Token signing keys from a secret store (JWT_SIGNING_KEYS), with no service: the first PEM signs,
every one is published, and a key of another kind than JWT_ALGORITHM is refused at once."""
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.test import override_settings

from users.auth.keys import key_set_from_environment


def pem(private) -> str:
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()


def test_the_first_key_of_the_environment_signs_and_every_one_verifies():
    new, old = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    with override_settings(JWT_SIGNING_KEYS=[pem(new), pem(old)], JWT_ALGORITHM="EdDSA"):
        keys = key_set_from_environment()
    kid, private = keys.signing()
    assert private.public_key().public_bytes_raw() == new.public_key().public_bytes_raw()
    published = keys.jwks()["keys"]
    assert [key["kid"] for key in published] == [kid, published[1]["kid"]] and all("d" not in k for k in published)
    assert keys.verifying(published[1]["kid"]).public_bytes_raw() == old.public_key().public_bytes_raw()
    with override_settings(JWT_SIGNING_KEYS=[]):
        assert key_set_from_environment() is None


def test_a_key_of_another_kind_than_the_algorithm_is_refused():
    with override_settings(JWT_SIGNING_KEYS=[pem(ec.generate_private_key(ec.SECP256R1()))], JWT_ALGORITHM="EdDSA"):
        with pytest.raises(ValueError, match="not a key of EdDSA"):
            key_set_from_environment()
