"""Strict, consistent input: strings stay strings, passwords are never trimmed, usernames are
NFKC-normalized and compared without case, homographs and reserved names are refused."""
import re
import unicodedata

import pytest
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from tests.support import PASSWORD, bearer, login, register
from users.models import User

pytestmark = pytest.mark.django_db

USERS = "/api/v1/users/"
TOKEN = "/api/v1/auth/token/"


@pytest.mark.parametrize("field, value", [("bio", 12), ("first_name", 1.5), ("username", 7), ("email", True)])
def test_a_number_where_a_string_is_expected_is_400(api_client, field, value):
    response = register(api_client, **{field: value})
    assert response.status_code == 400
    assert response.json()[field] == ["Not a valid string."]
    assert not User.objects.exists()


def test_patch_bio_number_is_400_and_keeps_the_old_bio(api_client, user):
    response = api_client.patch(f"{USERS}me/", {"bio": 12}, format="json", **bearer(user))
    assert response.status_code == 400 and response.json() == {"bio": ["Not a valid string."]}
    user.refresh_from_db()
    assert user.bio != "12"


def test_login_fields_must_be_strings(api_client, user):
    response = api_client.post(TOKEN, {"username": 12, "password": 12}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


@pytest.mark.parametrize("password", [f" {PASSWORD}", f"{PASSWORD} ", f"  {PASSWORD}\t"])
def test_a_password_with_surrounding_spaces_logs_in_as_typed(api_client, password):
    assert register(api_client, password=password).status_code == 201
    assert login(api_client, "ada", password).status_code == 200
    assert login(api_client, "ada", password.strip()).status_code == 401


def test_login_ignores_case_and_width(api_client):
    assert register(api_client, username="Ada").status_code == 201
    for typed in ("Ada", "ada", "ADA", "ａｄａ"):
        assert login(api_client, typed).status_code == 200, typed


def test_fullwidth_username_is_stored_normalized_and_collides(api_client):
    response = register(api_client, username="ｇｒａｃｅ")
    assert response.status_code == 201 and response.json()["username"] == "grace"
    again = register(api_client, username="GRACE", email="other@example.com")
    assert again.status_code == 409 and "username" in again.json()


@pytest.mark.parametrize("username", ["аda", "pаypal", "ΑDA"])  # Cyrillic а, Greek Α
def test_mixed_script_confusable_username_is_400(api_client, username):
    response = register(api_client, username=username)
    assert response.status_code == 400
    assert "username" in response.json()


def test_single_script_non_latin_username_is_fine(api_client):
    assert register(api_client, username="ада").status_code == 201


def test_confusable_email_is_400(api_client):
    response = register(api_client, email="ada@exаmple.com")  # Cyrillic а in the domain
    assert response.status_code == 400
    assert "email" in response.json()


@pytest.mark.parametrize("username", ["admin", "Root", "SUPPORT", "me", "www", ".well-known"])
def test_reserved_username_is_400(api_client, username):
    response = register(api_client, username=username)
    assert response.status_code == 400
    assert "username" in response.json()


def test_rename_to_a_reserved_or_confusable_name_is_400(api_client, user):
    for username in ("administrator", "Administrator", "usеr"):  # Cyrillic е
        response = api_client.patch(f"{USERS}me/", {"username": username}, format="json", **bearer(user))
        assert response.status_code == 400, username
        assert "username" in response.json()


def schema_pattern(client) -> "re.Pattern[str]":
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return re.compile(schema["components"]["schemas"]["UserCreateRequest"]["properties"]["username"]["pattern"])


REFUSED_NAMES = ["e,i", "ü0\u00b7", "ü0\u00bf", "a b", "tab\there", "<b>", "x\u00a0y", "x\u3000y"]


@pytest.mark.parametrize("username", REFUSED_NAMES)
def test_the_schema_refuses_the_usernames_the_server_refuses_where_a_pattern_can_say_it(client, api_client, username):
    assert schema_pattern(client).search(username) is None
    assert register(api_client, username=username).status_code == 400


def test_the_schema_pattern_never_refuses_a_name_the_server_takes(client):
    """Each character the pattern refuses is refused by Django's rule wherever it stands, even with
    a combining mark after it that NFKC could fold into it; the names it lets through include every
    letter and digit of Latin-1 and the names of other scripts."""
    pattern = schema_pattern(client)
    marks = [chr(code) for code in range(0x110000) if unicodedata.combining(chr(code))]
    refused = [chr(code) for code in range(0x100) if pattern.fullmatch(chr(code)) is None]
    assert len(refused) > 100
    rule = UnicodeUsernameValidator()
    for char in refused:
        for name in (char, f"a{char}b", *(f"a{char}{mark}" for mark in marks)):
            with pytest.raises(ValidationError):
                rule(User.normalize_username(name))
    for name in ("grace", "Ἀλέξανδρος", "ＫＡＴＥ", "ü0", "øre", "x.y@z+w-v_u", "\u00aa\u00b5\u00ba", "u\u0308"):
        assert pattern.fullmatch(name), name
        rule(User.normalize_username(name))
