"""The mechanics of second factors, with no service: codes against a clock, recovery codes as
typed, secrets under a key, and whatever a browser might send as a passkey's answer."""
import time

import pyotp
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from tests.authenticator import SoftAuthenticator
from users.mfa import keys, passkeys, recovery, totp


def test_a_code_is_good_for_its_step_and_one_either_way_and_only_after_the_last_one_used():
    secret = totp.new_secret()
    app = pyotp.TOTP(secret)
    at = time.time()
    now = app.timecode(at)
    assert totp.step_of(secret, app.generate_otp(now), at=at) == now
    assert totp.step_of(secret, app.generate_otp(now - 1), at=at) == now - 1
    assert totp.step_of(secret, app.generate_otp(now + 1), at=at) == now + 1
    assert totp.step_of(secret, app.generate_otp(now + 2), at=at) is None
    assert totp.step_of(secret, app.generate_otp(now), after=now, at=at) is None  # a replay
    assert totp.step_of(secret, app.generate_otp(now + 1), after=now, at=at) == now + 1
    for junk in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦", None, 123456):
        assert totp.step_of(secret, junk, at=at) is None


def test_the_app_gets_a_uri_and_a_qr_code_it_can_read():
    secret = totp.new_secret()
    uri, svg = totp.provisioning(secret, account="ada")
    assert pyotp.parse_uri(uri).secret == secret and pyotp.parse_uri(uri).name == "ada"
    assert svg.startswith("<svg") and "</svg>" in svg


def test_recovery_codes_are_typed_in_any_case_with_or_without_the_dash():
    codes = recovery.new_codes()
    stored = recovery.digests(codes)
    assert len(set(codes)) == 10 and all(len(code) == 11 and code[5] == "-" for code in codes)
    assert recovery.match(codes[3].upper().replace("-", " "), stored) == stored[3]
    assert recovery.match("aaaaa-aaaaa", stored) is None and recovery.match("123456", stored) is None
    assert not any(code in "".join(stored) for code in codes)  # digests, not codes


@pytest.mark.parametrize("settings_, found", [
    ({"MFA_ENCRYPTION_KEY": "", "MFA_REQUIRED_FOR_STAFF": False}, ("users.W010", "users.W011", "users.W012")),
    ({"MFA_ENCRYPTION_KEY": "not-a-key", "MFA_REQUIRED_FOR_STAFF": True}, ("users.E010",)),
])
def test_the_deploy_check_warns_of_a_derived_key_and_of_staff_without_a_factor(settings_, found):
    with override_settings(**settings_), pytest.raises(SystemCheckError) as raised:
        call_command("check", "--deploy", "--fail-level", "WARNING", "--tag", "security")
    assert all(code in str(raised.value) for code in found)
    with override_settings(MFA_ENCRYPTION_KEY=Fernet.generate_key().decode(), MFA_REQUIRED_FOR_STAFF=True,
                           JWT_KEYS_ENCRYPTION_KEY=Fernet.generate_key().decode()):
        assert keys.check_encryption_key() == []


def test_a_secret_read_under_another_key_is_none_not_an_error():
    token = keys.encrypt("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in token and keys.decrypt(token) == "JBSWY3DPEHPK3PXP"
    with override_settings(MFA_ENCRYPTION_KEY="x" * 43 + "="):
        assert keys.decrypt(token) is None


@pytest.mark.parametrize("credential", [None, 1, "x", [], {}, {"response": None}, {"response": {"clientDataJSON": 5}},
                                        {"response": {"clientDataJSON": "%%%"}}, {"rawId": []}])
def test_any_answer_a_browser_might_send_is_read_as_none_or_refused(credential):
    assert passkeys.challenge_of(credential) is None
    assert passkeys.credential_id_of(credential) is None
    with pytest.raises(passkeys.PasskeyRefused):
        passkeys.verify_registration(credential, challenge="AAAA")


def test_an_answer_from_another_origin_or_to_another_challenge_is_refused():
    options, challenge = passkeys.registration_options(user_handle=b"h", name="ada", exclude=[])
    device = SoftAuthenticator(origin="https://evil.example")
    with pytest.raises(passkeys.PasskeyRefused):
        passkeys.verify_registration(device.create(options), challenge=challenge)
    device = SoftAuthenticator()
    made = passkeys.verify_registration(device.create(options), challenge=challenge)
    other, other_challenge = passkeys.assertion_options(allow=[made.credential_id])
    answer = device.get(options | {"challenge": other["challenge"]})
    with pytest.raises(passkeys.PasskeyRefused):
        passkeys.verify_assertion(answer, challenge=challenge, public_key=made.public_key, sign_count=0,
                                  user_verification=True)
    assert passkeys.verify_assertion(answer, challenge=other_challenge, public_key=made.public_key, sign_count=0,
                                     user_verification=True) == 1
