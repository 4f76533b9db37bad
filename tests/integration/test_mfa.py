"""A second factor: an authenticator app (real codes from pyotp), recovery codes and passkeys (a
software authenticator here; Chromium's own in tests/system/test_passkeys.py), at login and before
every change that could take the account."""
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pyotp
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.authenticator import SoftAuthenticator
from tests.smtp import link_in, received, text_and_html
from tests.support import PASSWORD, assert_429, limits, login, user_factory
from users import accounts
from users.mail import links
from users.models import Authenticator, MfaChallenge, Session, UserEvent

AUTH = "/api/v1/auth"
ME = "/api/v1/users/me/"


def client_with(pair: dict) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    client.pair = pair
    return client


def logged_in(user, password: str = PASSWORD) -> APIClient:
    response = login(None, user.username, password)
    assert response.status_code == 200, response.content
    return client_with(response.json())


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def away_from_a_step_boundary() -> None:
    """A code is checked against the clock: start a story with most of a 30-second step left."""
    if 30 - time.time() % 30 < 4:
        time.sleep(4)


def enable_totp(client: APIClient) -> tuple[pyotp.TOTP, list[str]]:
    setup = client.post(f"{AUTH}/mfa/totp/", {"current_password": PASSWORD}, format="json")
    assert setup.status_code == 200, setup.content
    app = pyotp.TOTP(setup.json()["secret"])
    confirmed = client.post(f"{AUTH}/mfa/totp/confirm/", {"code": app.now()}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return app, confirmed.json()["recovery_codes"]


def code_at(app: pyotp.TOTP, steps: int) -> str:
    return app.at(time.time() + steps * app.interval)


def second_step(user, **factor) -> tuple[int, dict]:
    stage = login(None, user.username)
    assert stage.status_code == 401 and stage.json()["code"] == "mfa_required", stage.content
    answer = APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": stage.json()["mfa_token"], **factor},
                              format="json")
    return answer.status_code, answer.json()


@pytest.fixture
def ada(db):
    away_from_a_step_boundary()
    return user_factory(username="ada", email="ada@example.com")


# --- Authenticator apps ---------------------------------------------------------------------------


def test_an_app_is_set_up_with_the_password_and_on_from_its_first_code(ada):
    client = logged_in(ada)
    assert client.post(f"{AUTH}/mfa/totp/", {}, format="json").json() == {
        "current_password": ["This field is required."]}
    setup = client.post(f"{AUTH}/mfa/totp/", {"current_password": PASSWORD}, format="json").json()
    assert set(setup) == {"secret", "otpauth_uri", "qr_svg"}
    assert setup["otpauth_uri"].startswith("otpauth://totp/sidus:ada?secret=") and "<svg" in setup["qr_svg"]
    assert client.get(f"{AUTH}/mfa/").json()["totp"]["enabled"] is False
    assert login(None, "ada").status_code == 200  # not on yet

    app = pyotp.TOTP(setup["secret"])
    wrong = client.post(f"{AUTH}/mfa/totp/confirm/", {"code": code_at(app, 3)}, format="json")
    assert wrong.status_code == 400 and list(wrong.json()) == ["code"]
    codes = client.post(f"{AUTH}/mfa/totp/confirm/", {"code": app.now()}, format="json").json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    factors = client.get(f"{AUTH}/mfa/").json()
    assert factors["totp"]["enabled"] is True and factors["recovery_codes"] == {"left": 10, "total": 10}
    stored = str(list(Authenticator.objects.filter(user=ada).values_list("data", flat=True)))
    assert setup["secret"] not in stored and not any(code in stored for code in codes)  # encrypted, digested
    assert client.post(f"{AUTH}/mfa/totp/", {"current_password": PASSWORD, "code": code_at(app, 1)},
                       format="json").status_code == 409  # on already


def test_with_an_app_the_password_gets_a_401_and_an_mfa_token_for_the_second_step(ada):
    app, _ = enable_totp(logged_in(ada))
    stage = login(None, "ada")
    body = stage.json()
    assert stage.status_code == 401 and body["code"] == "mfa_required" and "access" not in body
    assert body["methods"] == ["totp", "recovery_code"] and "passkey" not in body
    assert "mfa_token" not in login(None, "ada", "wrong-password").json()  # a wrong password: a plain 401

    done = APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": body["mfa_token"], "code": code_at(app, 1)},
                            format="json")
    assert done.status_code == 200, done.content
    access, refresh = claims(done.json()["access"]), claims(done.json()["refresh"])
    assert access["amr"] == ["pwd", "otp"] and abs(access["auth_time"] - time.time()) < 5
    assert client_with(done.json()).get(ME).status_code == 200
    again = APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": body["mfa_token"], "code": code_at(app, 1)},
                             format="json")
    assert again.status_code == 400 and list(again.json()) == ["mfa_token"]  # once
    renewed = APIClient().post(f"{AUTH}/token/refresh/", {"refresh": done.json()["refresh"]}, format="json")
    assert renewed.status_code == 200  # a refresh needs no factor: the session is proven
    assert claims(renewed.json()["access"])["amr"] == ["pwd", "otp"]
    assert claims(renewed.json()["access"])["auth_time"] == refresh["auth_time"]


def test_a_code_works_once_and_one_step_either_way(ada):
    app, _ = enable_totp(logged_in(ada))  # used the current step's code
    assert second_step(ada, code=app.now())[0] == 400  # the same step again: a replay
    assert second_step(ada, code=code_at(app, 2))[0] == 400  # two steps ahead: too far
    assert second_step(ada, code=code_at(app, 1))[0] == 200  # one step of drift
    assert second_step(ada, code=code_at(app, 1))[0] == 400  # ...once
    assert second_step(ada, code=app.now())[0] == 400  # and none before it after that
    assert UserEvent.objects.filter(user=ada, type="user.mfa_failed").count() == 4


def test_an_mfa_token_dies_with_the_password_and_after_five_minutes(ada):
    app, _ = enable_totp(logged_in(ada))
    token = login(None, "ada").json()["mfa_token"]
    accounts.password_change(user=ada, new_password="another-long-passphrase-5")
    answer = APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": token, "code": code_at(app, 1)},
                              format="json")
    assert answer.status_code == 400 and list(answer.json()) == ["mfa_token"]
    token = login(None, "ada", "another-long-passphrase-5").json()["mfa_token"]
    MfaChallenge.objects.filter(kind="login").update(expires_at=timezone.now())
    answer = APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": token, "code": code_at(app, 1)},
                              format="json")
    assert answer.status_code == 400 and list(answer.json()) == ["mfa_token"]
    assert accounts.challenges_prune() >= 1


def test_the_second_step_takes_exactly_one_factor(ada):
    enable_totp(logged_in(ada))
    token = login(None, "ada").json()["mfa_token"]
    for body in ({}, {"code": "123456", "recovery_code": "abcde-fghjk"}):
        answer = APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": token, **body}, format="json")
        assert answer.status_code == 400 and "Send one of" in str(answer.json())


# --- Recovery codes ---------------------------------------------------------------------------------


def test_recovery_codes_work_once_and_a_new_set_ends_the_old_one(ada):
    app, codes = enable_totp(logged_in(ada))
    status, pair = second_step(ada, recovery_code=codes[0].upper().replace("-", " "))  # as typed off paper
    assert status == 200 and claims(pair["access"])["amr"] == ["pwd", "otp"]
    assert second_step(ada, recovery_code=codes[0])[0] == 400
    client = client_with(pair)
    assert client.get(f"{AUTH}/mfa/").json()["recovery_codes"] == {"left": 9, "total": 10}
    assert client.post(f"{AUTH}/mfa/recovery-codes/", {"current_password": PASSWORD},
                       format="json").json() == {"code": [accounts_factor_required()]}
    fresh = client.post(f"{AUTH}/mfa/recovery-codes/", {"current_password": PASSWORD, "code": codes[1]},
                        format="json").json()["recovery_codes"]
    assert second_step(ada, recovery_code=codes[2])[0] == 400  # the old set is gone
    assert second_step(ada, code=fresh[0])[0] == 200  # `code` takes a recovery code too
    types = list(UserEvent.objects.filter(user=ada).values_list("type", flat=True))
    assert types.count("user.recovery_code_used") == 3 and types.count("user.recovery_codes_generated") == 2


def accounts_factor_required() -> str:
    from users.api.serializers import FACTOR_REQUIRED

    return FACTOR_REQUIRED


def test_wrong_codes_are_limited_per_account_and_then_even_the_right_one_is_a_429(ada):
    app, codes = enable_totp(logged_in(ada))
    with limits(mfa="100/m/ip,3/1d/key"):
        for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
            token = login(None, "ada", REMOTE_ADDR=ip).json()["mfa_token"]
            answer = APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": token, "code": "000001"},
                                      format="json", REMOTE_ADDR=ip)
            assert answer.status_code == 400
        token = login(None, "ada", REMOTE_ADDR="192.0.2.9").json()["mfa_token"]
        assert_429(APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": token, "code": code_at(app, 1)},
                                    format="json", REMOTE_ADDR="192.0.2.9"))
        assert_429(APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": token, "recovery_code": codes[0]},
                                    format="json", REMOTE_ADDR="192.0.2.9"))
    assert Authenticator.objects.get(user=ada, type="recovery_codes").data["digests"].__len__() == 10  # none used
    log = logged_in_with_code(ada, codes[1]).get(f"{ME}events/").json()["results"]
    refused = [event for event in log if event["type"] == "user.mfa_failed"]
    assert len(refused) == 3 and {event["by"] for event in refused} == {None}  # anyone's, as a failed login
    assert {event["ip"] for event in refused} == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}  # and from where


def logged_in_with_code(user, code: str) -> APIClient:
    status, pair = second_step(user, code=code)
    assert status == 200, pair
    return client_with(pair)


# --- Sensitive changes ------------------------------------------------------------------------------


def test_every_change_that_could_take_the_account_needs_the_factor_too(ada):
    _, codes = enable_totp(logged_in(ada))
    client = logged_in_with_code(ada, codes[0])
    attempts = [
        ("post", f"{AUTH}/email/change/", {"new_email": "thief@example.com", "current_password": PASSWORD}),
        ("post", f"{AUTH}/password/change/", {"new_password": "thiefs-passphrase-77", "current_password": PASSWORD}),
        ("delete", ME, {"current_password": PASSWORD}),
        ("delete", f"{AUTH}/sessions/", {}),
        ("delete", f"{AUTH}/mfa/totp/", {"current_password": PASSWORD}),
        ("post", f"{AUTH}/passkeys/registration/options/", {"current_password": PASSWORD}),
    ]
    with limits(mfa="100/m/ip,100/1d/key"):
        for method, path, body in attempts:
            answer = getattr(client, method)(path, body, format="json")
            assert answer.status_code == 400 and list(answer.json()) == ["code"], (path, answer.content)
            wrong = getattr(client, method)(path, {**body, "code": "999999"}, format="json")
            assert wrong.status_code == 400 and list(wrong.json()) == ["code"], path
    assert client.get(ME).status_code == 200 and Authenticator.objects.filter(user=ada, type="totp").exists()

    changed = client.post(f"{AUTH}/password/change/", {"new_password": "owners-new-passphrase-8",
                                                       "current_password": PASSWORD, "code": codes[1]}, format="json")
    assert changed.status_code == 200 and claims(changed.json()["access"])["amr"] == ["pwd", "otp"]
    client = client_with(changed.json())
    assert client.delete(f"{AUTH}/sessions/", {"code": codes[2]}, format="json").status_code == 204
    assert client.delete(f"{AUTH}/mfa/totp/", {"current_password": "owners-new-passphrase-8", "code": codes[3]},
                         format="json").status_code == 204
    assert client.get(f"{AUTH}/mfa/").json()["recovery_codes"]["left"] == 0  # gone with the last factor
    assert login(None, "ada", "owners-new-passphrase-8").status_code == 200
    assert client.delete(f"{AUTH}/sessions/").status_code == 204  # no factor: no body


def test_a_password_reset_keeps_the_factor_and_the_owners_mailbox_removes_a_thiefs(ada):
    owners_device = SoftAuthenticator()
    owner = logged_in(ada)
    options = owner.post(f"{AUTH}/passkeys/registration/options/", {"current_password": PASSWORD}, format="json")
    owner.post(f"{AUTH}/passkeys/", {"credential": owners_device.create(options.json()), "name": "mine"},
               format="json")
    accounts.password_change(user=ada, new_password=PASSWORD, reason=Session.EndReason.PASSWORD_RESET)
    assert login(None, "ada").status_code == 401  # the factor stays

    login_time = timezone.now()
    thief = logged_in_with_passkey(ada, owners_device)  # say the thief had both for a moment
    thiefs_app, _ = enable_totp_with(thief, credential_for(thief, owners_device))
    assert accounts.has_factor(ada) and Authenticator.objects.filter(user=ada, type="totp").exists()
    token = parse_qs(urlsplit(links.secure_account_link(ada, login_time=login_time)).query)["token"][0]
    assert APIClient().post(f"{AUTH}/secure-account/", {"token": token}, format="json").status_code == 200
    assert not Authenticator.objects.filter(user=ada, type="totp").exists()  # the thief's app is gone
    assert Authenticator.objects.filter(user=ada, type="passkey", name="mine").exists()  # the owner's stays
    assert thief.get(ME).status_code == 401


def credential_for(client: APIClient, device: SoftAuthenticator) -> dict:
    options = client.post(f"{AUTH}/passkeys/assertion/options/")
    assert options.status_code == 200, options.content
    return device.get(options.json())


def enable_totp_with(client: APIClient, credential: dict) -> tuple[pyotp.TOTP, list[str]]:
    setup = client.post(f"{AUTH}/mfa/totp/", {"current_password": PASSWORD, "credential": credential},
                        format="json")
    assert setup.status_code == 200, setup.content
    app = pyotp.TOTP(setup.json()["secret"])
    confirmed = client.post(f"{AUTH}/mfa/totp/confirm/", {"code": app.now()}, format="json")
    return app, confirmed.json()["recovery_codes"]


def logged_in_with_passkey(user, device: SoftAuthenticator) -> APIClient:
    stage = login(None, user.username).json()
    assert "passkey" in stage["methods"]
    answer = APIClient().post(f"{AUTH}/mfa/authenticate/", {"mfa_token": stage["mfa_token"],
                                                            "credential": device.get(stage["passkey"])}, format="json")
    assert answer.status_code == 200, answer.content
    return client_with(answer.json())


# --- Passkeys ----------------------------------------------------------------------------------------


def test_a_passkey_logs_in_as_a_second_factor_and_alone(ada):
    device = SoftAuthenticator()
    client = logged_in(ada)
    options = client.post(f"{AUTH}/passkeys/registration/options/", {"current_password": PASSWORD},
                          format="json").json()
    assert options["rp"]["id"] == "localhost" and options["authenticatorSelection"]["residentKey"] == "required"
    added = client.post(f"{AUTH}/passkeys/", {"credential": device.create(options), "name": "laptop"}, format="json")
    assert added.status_code == 201 and added.json()["name"] == "laptop"
    assert len(added.json()["recovery_codes"]) == 10  # the first factor brings them

    stage = login(None, "ada").json()
    assert stage["methods"] == ["recovery_code", "passkey"] and stage["passkey"]["allowCredentials"]
    second = logged_in_with_passkey(ada, device)
    assert claims(second.pair["access"])["amr"] == ["pwd", "hwk"]

    login_options = APIClient().post(f"{AUTH}/passkeys/login/options/").json()
    assert login_options["userVerification"] == "required" and not login_options.get("allowCredentials")
    assertion = device.get(login_options)
    alone = APIClient().post(f"{AUTH}/passkeys/login/", {"credential": assertion}, format="json")
    assert alone.status_code == 200 and claims(alone.json()["access"])["amr"] == ["hwk"]
    assert APIClient().post(f"{AUTH}/passkeys/login/", {"credential": assertion}, format="json").status_code == 400
    passkey = client.get(f"{AUTH}/mfa/").json()["passkeys"][0]
    assert passkey["name"] == "laptop" and passkey["last_used_at"] is not None


def test_a_sign_counter_that_goes_back_is_refused_and_logged(ada, caplog):
    device = SoftAuthenticator()
    client = logged_in(ada)
    options = client.post(f"{AUTH}/passkeys/registration/options/", {"current_password": PASSWORD}, format="json")
    client.post(f"{AUTH}/passkeys/", {"credential": device.create(options.json()), "name": "key"}, format="json")
    logged_in_with_passkey(ada, device)
    device.sign_count = 0  # a clone of the authenticator, as it was when registered
    options = APIClient().post(f"{AUTH}/passkeys/login/options/").json()
    answer = APIClient().post(f"{AUTH}/passkeys/login/", {"credential": device.get(options)}, format="json")
    assert answer.status_code == 400 and list(answer.json()) == ["credential"]
    assert "sign counter went back" in caplog.text


def test_a_removed_passkey_is_refused_and_a_renamed_one_shows_its_name(ada):
    device, other = SoftAuthenticator(), SoftAuthenticator()
    client = logged_in(ada)
    for key, name in ((device, "old"), (other, "spare")):
        proof = {"credential": credential_for(client, device)} if key is other else {}  # the first is a factor
        options = client.post(f"{AUTH}/passkeys/registration/options/", {"current_password": PASSWORD, **proof},
                              format="json")
        assert client.post(f"{AUTH}/passkeys/", {"credential": key.create(options.json()), "name": name},
                           format="json").status_code == 201
    old_id = Authenticator.objects.get(user=ada, name="old").pk
    assert client.patch(f"{AUTH}/passkeys/{old_id}/", {"name": "retired"}, format="json").json()["name"] == "retired"
    assert client.delete(f"{AUTH}/passkeys/{old_id}/", {"current_password": PASSWORD},
                         format="json").status_code == 400
    assert client.delete(f"{AUTH}/passkeys/{old_id}/", {"current_password": PASSWORD,
                                                        "credential": credential_for(client, other)},
                         format="json").status_code == 204
    options = APIClient().post(f"{AUTH}/passkeys/login/options/").json()
    assert APIClient().post(f"{AUTH}/passkeys/login/", {"credential": device.get(options)},
                            format="json").status_code == 400
    assert client.delete(f"{AUTH}/passkeys/{old_id}/", {"current_password": PASSWORD, "credential":
                         credential_for(client, other)}, format="json").status_code == 404
    types = list(UserEvent.objects.filter(user=ada).values_list("type", flat=True))
    assert types.count("user.passkey_added") == 2 and types.count("user.passkey_removed") == 1


def test_a_refused_registration_answer_uses_its_challenge_up(ada):
    device, client = SoftAuthenticator(), logged_in(ada)
    options = client.post(f"{AUTH}/passkeys/registration/options/", {"current_password": PASSWORD}, format="json")
    made = device.create(options.json())
    refused = SoftAuthenticator(origin="https://evil.example").create(options.json())
    assert client.post(f"{AUTH}/passkeys/", {"credential": refused, "name": "x"}, format="json").status_code == 400
    assert client.post(f"{AUTH}/passkeys/", {"credential": made, "name": "x"}, format="json").status_code == 400
    assert not Authenticator.objects.filter(user=ada).exists()


@pytest.mark.parametrize("credential", [{}, [], "x", {"response": {"clientDataJSON": "!!"}}, {"rawId": 5},
                                        {"response": {"clientDataJSON": "e30"}, "rawId": "AA"}])
def test_a_credential_of_any_shape_is_a_400_naming_it(ada, credential):
    answer = APIClient().post(f"{AUTH}/passkeys/login/", {"credential": credential}, format="json")
    assert answer.status_code == 400 and list(answer.json()) == ["credential"]


# --- Staff ---------------------------------------------------------------------------------------------


def test_the_admin_login_asks_an_account_with_a_factor_for_its_code(ada):
    ada.is_staff = ada.is_superuser = True
    ada.save(update_fields=["is_staff", "is_superuser"])
    app, codes = enable_totp(logged_in(ada))
    form = {"username": "ada", "password": PASSWORD, "next": "/admin/"}
    page = Client().post("/admin/login/", form)
    assert page.status_code == 200 and "This account has a second factor" in page.content.decode()
    wrong = Client().post("/admin/login/", {**form, "code": "000000" if code_at(app, 1) != "000000" else "000001"})
    assert "The code is not right" in wrong.content.decode()
    assert Client().post("/admin/login/", {**form, "code": code_at(app, 1)}).status_code == 302
    assert Client().post("/admin/login/", {**form, "code": codes[0]}).status_code == 302


def test_with_mfa_required_for_staff_the_admin_first_sets_up_an_app(ada, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    ada.is_staff = ada.is_superuser = True
    ada.save(update_fields=["is_staff", "is_superuser"])
    client = Client()
    client.force_login(ada)
    assert client.get("/admin/").url == "/admin/mfa-setup/"
    assert client.get("/admin/users/user/").url == "/admin/mfa-setup/"
    page = client.get("/admin/mfa-setup/").content.decode()
    assert "<svg" in page
    secret = Authenticator.objects.get(user=ada, type="totp").data["secret"]
    from users.mfa import keys

    done = client.post("/admin/mfa-setup/", {"code": pyotp.TOTP(keys.decrypt(secret)).now()}).content.decode()
    assert done.count("<code>") == 10 and "shown only now" in done
    assert client.get("/admin/").status_code == 200


def test_staff_remove_a_users_factors_and_the_log_says_staff_did(ada, make_user):
    _, codes = enable_totp(logged_in(ada))
    admin = Client()
    admin.force_login(make_user(is_staff=True, is_superuser=True))
    page = admin.get(f"/admin/users/user/{ada.pk}/change/").content.decode()
    assert "authenticator app; 10 of 10 recovery codes left" in page and codes[0] not in page
    admin.post("/admin/users/user/", {"action": "remove_factors", "_selected_action": [ada.pk]})
    assert not Authenticator.objects.filter(user=ada).exists()
    assert login(None, "ada").status_code == 200
    event = UserEvent.objects.filter(user=ada, type="user.mfa_disabled").get()
    assert event.context == {"by": "staff"} and event.data["method"] == "totp"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_new_factor_is_news_to_the_mailbox_whose_link_removes_it(inbox):
    """Adding a factor is a way to keep the owner out: the owner's mailbox can undo it."""
    away_from_a_step_boundary()
    ada = user_factory(username="ada", email="ada@example.com", email_verified=True)
    owners = SoftAuthenticator()
    client = logged_in(ada)
    options = client.post(f"{AUTH}/passkeys/registration/options/", {"current_password": PASSWORD}, format="json")
    client.post(f"{AUTH}/passkeys/", {"credential": owners.create(options.json()), "name": "mine"}, format="json")
    first = received(inbox, "ada@example.com", "A second factor was added to your sidus account")[0]
    thief = logged_in_with_passkey(ada, owners)
    enable_totp_with(thief, credential_for(thief, owners))  # as if the thief had both for a moment
    notices = received(inbox, "ada@example.com", "A second factor was added to your sidus account", count=2)
    latest = next(message for message in notices if message is not first)
    assert "an authenticator app was just added" in text_and_html(latest)[0]
    token = link_in(latest, "secure-account")["token"]
    assert APIClient().post(f"{AUTH}/secure-account/", {"token": token}, format="json").status_code == 200
    # The app went, and the recovery codes it replaced the owner's with; the owner's passkey stayed.
    assert list(Authenticator.objects.filter(user=ada).values_list("type", flat=True)) == ["passkey"]
    assert thief.get(ME).status_code == 401
