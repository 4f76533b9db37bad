"""Tokens die with the password (any way it changes) and with logout; refresh keeps the session."""
import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.support import PASSWORD, token_pair_of
from users.runtime import current

pytestmark = pytest.mark.django_db

ME = "/api/v1/users/me/"
NEW_PASSWORD = "another-horse-battery-7"


def login(client, user, password=PASSWORD) -> dict[str, str]:
    return token_pair_of(client, user.username, password)


def me(client, access: str) -> int:
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}").status_code


def refresh(client, refresh_token: str):
    return client.post("/api/v1/auth/token/refresh/", {"refresh": refresh_token}, format="json")


def change_in_shell(user) -> None:
    user.set_password(NEW_PASSWORD)
    user.save()


def change_with_command(user, monkeypatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW_PASSWORD)
    call_command("changepassword", user.username)


def change_in_admin(user, make_user) -> None:
    admin = Client()
    admin.force_login(make_user(is_staff=True, is_superuser=True))
    response = admin.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.parametrize("how", ["shell", "command", "admin"])
def test_a_password_change_ends_every_earlier_token(api_client, user, make_user, monkeypatch, how):
    tokens = login(api_client, user)
    assert me(api_client, tokens["access"]) == 200

    {"shell": lambda: change_in_shell(user), "command": lambda: change_with_command(user, monkeypatch),
     "admin": lambda: change_in_admin(user, make_user)}[how]()

    assert me(api_client, tokens["access"]) == 401
    assert refresh(api_client, tokens["refresh"]).status_code == 401
    fresh = login(api_client, user, NEW_PASSWORD)
    assert me(api_client, fresh["access"]) == 200


def test_saving_other_fields_keeps_tokens_valid(api_client, user):
    tokens = login(api_client, user)
    user.bio = "still me"
    user.save()
    assert me(api_client, tokens["access"]) == 200
    assert refresh(api_client, tokens["refresh"]).status_code == 200


def test_logout_ends_that_sessions_access_token_at_once_and_no_other(api_client, user):
    laptop, phone = login(api_client, user), login(api_client, user)
    rotated = refresh(api_client, laptop["refresh"]).json()

    response = api_client.post("/api/v1/auth/token/blacklist/", {"refresh": rotated["refresh"]}, format="json")
    assert response.status_code == 200

    assert me(api_client, laptop["access"]) == 401  # issued before the refresh, same session
    assert me(api_client, rotated["access"]) == 401
    assert refresh(api_client, rotated["refresh"]).status_code == 401
    assert me(api_client, phone["access"]) == 200


def test_a_token_without_the_session_claims_is_refused(api_client, user):
    from users.auth.signing import SignedRefreshToken

    bare = SignedRefreshToken.for_user(user)  # as issued before this release: no pwd, no sid
    assert me(api_client, str(bare.access_token)) == 401
    assert refresh(api_client, str(bare)).status_code == 401


def test_refresh_of_a_hard_deleted_user_is_401_not_500(api_client, user):
    tokens = login(api_client, user)
    user.delete()
    assert refresh(api_client, tokens["refresh"]).status_code == 401


def test_with_redis_down_logged_in_users_still_get_answers(api_client, user, settings):
    tokens = login(api_client, user)
    current().redis.health.failed(ConnectionError("test: Redis is away"))
    assert me(api_client, tokens["access"]) == 200


# --- Leaving ends every session for good -------------------------------------------------------


def leave_by_api(client, user, tokens) -> None:
    response = client.delete(ME, {"current_password": PASSWORD}, format="json",
                             HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert response.status_code == 204


def leave_by_admin(client, user, tokens) -> None:
    from users.accounts import users_soft_delete

    users_soft_delete(user_ids=[user.pk])  # the admin's delete view and bulk action end here


def restore_one(user) -> None:
    from users.accounts import user_restore

    user.refresh_from_db()
    user_restore(user=user)


def restore_by_admin(user) -> None:
    from users.accounts import users_restore

    users_restore(user_ids=[user.pk])


@pytest.mark.parametrize("leave", [leave_by_api, leave_by_admin])
@pytest.mark.parametrize("restore", [restore_one, restore_by_admin])
def test_a_restore_does_not_revive_the_sessions_of_a_user_who_left(api_client, user, leave, restore):
    tokens = login(api_client, user)
    leave(api_client, user, tokens)
    assert me(api_client, tokens["access"]) == 401
    restore(user)

    assert me(api_client, tokens["access"]) == 401
    patched = api_client.patch(ME, {"bio": "revived"}, format="json", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert patched.status_code == 401
    assert refresh(api_client, tokens["refresh"]).status_code == 401
    user.refresh_from_db()
    assert user.bio != "revived" and user.deleted_at is None
    fresh = login(api_client, user)  # the account itself is back
    assert me(api_client, fresh["access"]) == 200


def test_a_restore_does_not_revive_an_admin_session(make_user):
    from users.accounts import user_restore, user_soft_delete

    boss = make_user(is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(boss)
    assert browser.get(reverse("admin:index")).status_code == 200
    user_restore(user=user_soft_delete(user=boss))
    assert browser.get(reverse("admin:index")).status_code == 302  # to the login page


# --- A refresh token works once: a second use is theft, and ends the session ------------------


def security_log(client, access: str) -> list[dict]:
    return client.get("/api/v1/users/me/events/", HTTP_AUTHORIZATION=f"Bearer {access}").json()["results"]


@pytest.mark.parametrize("second_use", ["refresh", "logout"])
def test_a_used_up_refresh_token_ends_its_session_and_says_so(api_client, user, second_use):
    stolen, other = login(api_client, user), login(api_client, user)
    rotated = refresh(api_client, stolen["refresh"]).json()  # the owner's client, say

    url = {"refresh": "/api/v1/auth/token/refresh/", "logout": "/api/v1/auth/token/blacklist/"}[second_use]
    replayed = api_client.post(url, {"refresh": stolen["refresh"]}, format="json")  # the thief's copy

    assert replayed.status_code == 401
    assert replayed.json()["code"] == "refresh_token_reused"
    assert "session has ended" in replayed.json()["detail"]
    # Every token of that session is dead, the newest pair too; the user's other session goes on.
    assert me(api_client, rotated["access"]) == 401
    again = refresh(api_client, rotated["refresh"])
    assert (again.status_code, again.json()["code"]) == (401, "session_ended")
    assert me(api_client, other["access"]) == 200
    ended = [e for e in security_log(api_client, other["access"]) if e["type"] == "user.session_ended"]
    assert [(e["reason"], e["by"]) for e in ended] == [("refresh_reused", "you")]


def test_a_refresh_token_refreshes_once_and_its_successor_goes_on(api_client, user):
    tokens = login(api_client, user)
    for _ in range(3):
        tokens = refresh(api_client, tokens["refresh"]).json()
        assert me(api_client, tokens["access"]) == 200
    assert api_client.post("/api/v1/auth/token/blacklist/", {"refresh": tokens["refresh"]},
                           format="json").status_code == 200
    assert refresh(api_client, tokens["refresh"]).json()["code"] == "session_ended"
