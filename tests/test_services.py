"""Service rules that the serializers cannot guarantee alone (races, soft delete)."""
import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError

from sidus.exception_handler import exception_handler
from tests.conftest import PASSWORD
from users import services
from users.models import User

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field", ["username", "email"])
def test_create_racing_a_duplicate_gets_a_field_error_not_a_500(user, field):
    # A concurrent registration passes the serializer's check; the database constraint catches it.
    fields = {"username": "newcomer", "email": "newcomer@example.com", field: getattr(user, field).upper()}

    with pytest.raises(ValidationError) as caught:
        services.user_create(password=PASSWORD, **fields)

    assert caught.value.detail == {field: [f"A user with that {field} already exists."]}
    assert caught.value.get_codes() == {field: ["unique"]}  # a 409 through the exception handler
    assert User.objects.count() == 1


def test_update_racing_a_duplicate_gets_a_field_error(user, make_user):
    other = make_user()
    with pytest.raises(ValidationError) as caught:
        services.user_update(user=user, data={"username": other.username})
    assert list(caught.value.detail) == ["username"]


def test_update_refuses_the_address(user):
    with pytest.raises(ValueError):
        services.user_update(user=user, data={"email": "elsewhere@example.com"})


def test_update_refuses_fields_outside_the_profile(user):
    with pytest.raises(ValueError):
        services.user_update(user=user, data={"is_staff": True})


def test_update_writes_only_given_columns_so_a_concurrent_soft_delete_survives(user):
    stale = User.objects.get(pk=user.pk)
    services.user_soft_delete(user=user)

    services.user_update(user=stale, data={"bio": "still here?"})

    fresh = User.objects.get(pk=user.pk)
    assert fresh.deleted_at is not None and not fresh.is_active
    assert fresh.bio == "still here?"


def test_soft_delete_and_restore(user):
    services.user_soft_delete(user=user)
    assert User.objects.deleted().filter(pk=user.pk).exists()
    assert not User.objects.alive().filter(pk=user.pk).exists()
    assert user.is_deleted

    services.user_restore(user=user)
    user.refresh_from_db()
    assert user.is_active and not user.is_deleted


def test_django_validation_error_becomes_a_400_field_error():
    response = exception_handler(DjangoValidationError({"bio": ["Too long."]}), {})
    assert response.status_code == 400
    assert response.data == {"bio": ["Too long."]}


def test_database_outage_is_a_503_not_a_500():
    from django.db import OperationalError

    response = exception_handler(OperationalError("connection refused"), {})
    assert response.status_code == 503
    assert response.data == {"detail": "Service temporarily unavailable, try again later."}


def test_empty_patch_writes_nothing(user):
    before = User.objects.get(pk=user.pk).updated_at
    services.user_update(user=user, data={})
    assert User.objects.get(pk=user.pk).updated_at == before
