"""The emailed links name one user and one address: what a token covers can be read only one way."""

import pytest
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from users.mail import links
from users.models import User

VERIFY = "/api/v1/auth/email/verify/"
RESET_CONFIRM = "/api/v1/auth/password/reset/confirm/"


def uid(pk: int) -> str:
    return urlsafe_base64_encode(force_bytes(pk))


@pytest.mark.django_db
def test_one_users_verification_link_does_not_verify_another_whose_id_and_address_join_alike(api_client):
    # Joined without a delimiter, pk 7 with "0victim@corp.test" read as pk 70 with "victim@corp.test".
    victim = User.objects.create_user("victim", "victim@corp.test", "x", pk=9_000_070)
    attacker = User.objects.create_user("attacker", "0victim@corp.test", "x", pk=9_000_07)
    token = links.email_verification_token.make_token(attacker)

    response = api_client.post(VERIFY, {"uid": uid(victim.pk), "token": token}, format="json")

    assert response.status_code == 400 and "token" in response.json()
    victim.refresh_from_db()
    assert victim.email_verified is False
    # The attacker's own link still works for the attacker's own address.
    assert api_client.post(VERIFY, {"uid": uid(attacker.pk), "token": token}, format="json").status_code == 204


@pytest.mark.django_db
def test_one_users_reset_link_does_not_reset_another_whose_values_join_alike(api_client):
    first = User.objects.create_user("first", "1a@corp.test", "x", pk=9_100_01)
    second = User.objects.create_user("second", "a@corp.test", "x", pk=9_100_011)
    second.password = first.password  # the same hash, so that only the pk and the address tell them apart
    second.save(update_fields=["password"])
    token = links.password_reset_token.make_token(first)
    body = {"uid": uid(second.pk), "token": token, "new_password": "a-brand-new-passphrase-7"}

    assert api_client.post(RESET_CONFIRM, body, format="json").status_code == 400
