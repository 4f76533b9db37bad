"""One notion of "the same name": every spelling that reaches an account shares its rate-limit key,
and no spelling creates a second account that the first one's login would also reach.

PostgreSQL's lower() folds "İ" to "i", Python's casefold() does not: a limit keyed one way and a
lookup done the other let "alİce" log in while "alice" was locked. Both now compare users.models.fold.
"""
import pytest

from tests.support import PASSWORD, assert_429, limits, login
from users.models import OutboxEmail, User, fold

pytestmark = pytest.mark.django_db

USERS = "/api/v1/users/"
RESET = "/api/v1/auth/password/reset/"

# (the account's username, another spelling, whether that spelling names the same account)
USERNAME_SPELLINGS = [
    ("alice", "ALICE", True),
    ("alice", "ａｌｉｃｅ", True),  # fullwidth
    ("alice", "alİce", False),  # U+0130: PostgreSQL's lower() made it "alice"
    ("alice", "alıce", False),  # dotless i
    ("straße", "strasse", True),
    ("straße", "STRASSE", True),
    ("strasse", "straße", True),
    ("sam", "ſam", True),  # long s
    ("kate", "\u212aate", True),  # Kelvin sign
    ("kate", "ＫＡＴＥ", True),
]
EMAIL_SPELLINGS = [
    ("ivy@mail.test", "IVY@MAIL.TEST", True),
    ("ivy@mail.test", "ivy@ｍａｉｌ.test", True),
    ("ivy@mail.test", "ivy@maİl.test", False),
    ("ivy@mail.test", "ivy@MAİL.TEST", False),
    ("ivy@mail.test", "ivy@maıl.test", False),
    ("ross@strasse.test", "ross@straße.test", True),
]


@pytest.mark.parametrize("name, spelling, same", USERNAME_SPELLINGS)
def test_a_spelling_logs_in_to_the_account_it_folds_to_and_to_no_other(api_client, make_user, name, spelling, same):
    account = make_user(username=name, password=PASSWORD)
    response = login(api_client, spelling)
    if same:
        assert response.status_code == 200
        assert api_client.get(f"{USERS}me/", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}").json()[
            "id"] == account.pk
    else:
        assert response.status_code == 401


@pytest.mark.parametrize("name, spelling, same", USERNAME_SPELLINGS)
@limits(login_failed="100/m/ip,3/1d/key")
def test_every_spelling_that_reaches_an_account_shares_its_failed_login_lock(
    api_client, make_user, name, spelling, same
):
    make_user(username=name, password=PASSWORD)
    for _ in range(3):
        assert login(api_client, name, "wrong").status_code == 401
    assert_429(login(api_client, name))
    response = login(api_client, spelling)
    if same:
        assert_429(response)
    else:
        assert response.status_code == 401  # another name, not this account: never its tokens


@pytest.mark.parametrize("name, spelling, same", USERNAME_SPELLINGS)
@limits(login_failed="100/m/ip,3/1d/key")
def test_failures_under_any_spelling_lock_the_account_they_reach(api_client, make_user, name, spelling, same):
    make_user(username=name, password=PASSWORD)
    for _ in range(3):
        login(api_client, spelling, "wrong")
    response = login(api_client, name)
    if same:
        assert_429(response)
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("name, spelling, same", USERNAME_SPELLINGS)
def test_signup_under_another_spelling_of_a_taken_username(api_client, make_user, name, spelling, same):
    first = make_user(username=name, password=PASSWORD)
    body = {"username": spelling, "email": "second@example.com", "password": PASSWORD}
    response = api_client.post(USERS, body, format="json")
    if same:
        assert response.status_code == 409 and "username" in response.json()
        return
    assert response.status_code == 201, response.content
    # Two accounts, and each name logs in to its own.
    for username, user_id in ((name, first.pk), (spelling, response.json()["id"])):
        access = login(api_client, username).json()["access"]
        assert api_client.get(f"{USERS}me/", HTTP_AUTHORIZATION=f"Bearer {access}").json()["id"] == user_id


@pytest.mark.parametrize("address, spelling, same", EMAIL_SPELLINGS)
@limits(password_reset="100/m/ip,2/1d/key")
def test_every_spelling_of_an_address_that_finds_the_account_shares_its_reset_limit(
    api_client, make_user, address, spelling, same
):
    from users import accounts

    make_user(email=address)
    for _ in range(2):
        assert api_client.post(RESET, {"email": address}, format="json").status_code == 202
    response = api_client.post(RESET, {"email": spelling}, format="json")
    if same:
        assert_429(response)
    else:
        assert response.status_code == 202
    # What the worker's lookup finds for this spelling: the account exactly when the keys agree.
    accounts.password_reset_request(email=spelling)
    sent = OutboxEmail.objects.filter(kind=OutboxEmail.Kind.PASSWORD_RESET, to=address).count()
    assert sent == (1 if same else 0)


@pytest.mark.parametrize("address, spelling, same", EMAIL_SPELLINGS)
def test_signup_under_another_spelling_of_a_taken_address(api_client, make_user, address, spelling, same):
    make_user(email=address)
    body = {"username": "newcomer", "email": spelling, "password": PASSWORD}
    response = api_client.post(USERS, body, format="json")
    if same:
        assert response.status_code == 409 and "email" in response.json()
    else:  # a second account, or refused as a look-alike of another script's letters
        assert response.status_code in (201, 400), response.content
    assert User.objects.named("email", address).count() == 1


def test_the_folded_columns_follow_every_save(make_user):
    user = make_user(username="Straße", email="Ross@Example.com")
    assert (user.username_folded, user.email_folded) == ("strasse", "ross@example.com")
    user.username, user.email = "ＫＡＴＥ", "KATE@EXAMPLE.COM"
    user.save(update_fields=["username", "email"])
    user.refresh_from_db()
    assert fold("ＫＡＴＥ") == "kate"
    assert (user.username_folded, user.email_folded) == ("kate", "kate@example.com")


def test_a_lone_surrogate_in_a_reset_address_is_a_400_not_a_500(api_client):
    response = api_client.post(RESET, '{"email": "a\\ud800@mail.test"}', content_type="application/json")
    assert response.status_code == 400 and "email" in response.json()
