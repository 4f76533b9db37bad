"""The keys that sign the tokens, shared by every worker and host through PostgreSQL."""
from django.db import models
from django.utils import timezone


class SigningKey(models.Model):
    """One key pair of the token signatures (users/auth/keys.py). Every key here verifies and is
    published in the JWKS by its `kid`; the newest whose `signs_from` has come signs. A rotation
    adds a key that signs only once every worker has read it (`signs_from`, two staleness bounds
    on), so no worker meets a token of a key it does not know; the key it follows stays until every
    token it signed has expired (REFRESH_TOKEN_LIFETIME), then `signing_keys prune` deletes it.
    The private key is kept encrypted (Fernet, JWT_KEYS_ENCRYPTION_KEY), the public one as its JWK."""

    kid = models.CharField(max_length=64, primary_key=True)  # the public key's RFC 7638 thumbprint
    algorithm = models.CharField(max_length=10)
    private_key = models.TextField()  # PKCS#8 PEM, encrypted
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    signs_from = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "user_signing_key"
        ordering = ["-signs_from", "-created_at"]

    def __str__(self) -> str:  # never the key
        return f"{self.algorithm} key {self.kid}"
