import itertools
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from users.models import User

PASSWORD = "correct-horse-battery-9"
_counter = itertools.count(1)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    def make(**fields) -> User:
        n = next(_counter)
        fields.setdefault("username", f"user{n}")
        fields.setdefault("email", f"user{n}@example.com")
        fields.setdefault("bio", f"bio of user {n}")
        return User.objects.create_user(password=fields.pop("password", PASSWORD), **fields)

    return make


@pytest.fixture
def user(make_user) -> User:
    return make_user(first_name="Ada", last_name="Lovelace")


def bearer(user: User) -> dict[str, str]:
    """The Authorization header of a fresh access token for `user`."""
    return {"HTTP_AUTHORIZATION": f"Bearer {RefreshToken.for_user(user).access_token}"}
