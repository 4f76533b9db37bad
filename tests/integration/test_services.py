"""Service rules that the serializers cannot guarantee alone (races, soft delete)."""
import threading

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection

from sidus.http.exception_handler import exception_handler
from tests.support import PASSWORD
from users import accounts
from users.models import User, UserEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field", ["username", "email"])
def test_create_racing_a_duplicate_gets_a_field_error_not_a_500(user, field):
    # A concurrent registration passes the serializer's check; the database constraint catches it.
    fields = {"username": "newcomer", "email": "newcomer@example.com", field: getattr(user, field).upper()}

    with pytest.raises(accounts.NameTaken) as caught:
        accounts.user_create(password=PASSWORD, **fields)

    answer = exception_handler(caught.value, {})  # as the API words it
    assert answer.status_code == 409 and answer.data == {field: [f"A user with that {field} already exists."]}
    assert User.objects.count() == 1


def test_update_racing_a_duplicate_gets_a_field_error(user, make_user):
    other = make_user()
    with pytest.raises(accounts.NameTaken) as caught:
        accounts.user_update(user=user, data={"username": other.username})
    assert caught.value.field == "username"


def test_update_refuses_the_address(user):
    with pytest.raises(ValueError):
        accounts.user_update(user=user, data={"email": "elsewhere@example.com"})


def test_update_refuses_fields_outside_the_profile(user):
    with pytest.raises(ValueError):
        accounts.user_update(user=user, data={"is_staff": True})


def test_update_writes_only_given_columns_so_a_concurrent_soft_delete_survives(user):
    stale = User.objects.get(pk=user.pk)
    accounts.user_soft_delete(user=user)

    accounts.user_update(user=stale, data={"bio": "still here?"})

    fresh = User.objects.get(pk=user.pk)
    assert fresh.deleted_at is not None and not fresh.is_active
    assert fresh.bio == "still here?"


@pytest.mark.django_db(transaction=True)
def test_a_write_between_the_read_and_the_write_is_kept_and_the_change_is_made_again_on_the_locked_row(user):
    """The write applies only to the row version it read: a change committed in between makes it
    read again, FOR UPDATE, check the precondition again and write; both changes stand, with
    their events in commit order."""
    checked = []

    def concurrent() -> None:
        accounts.user_update(user=User.objects.get(pk=user.pk), data={"first_name": "Between"})
        connection.close()

    def precondition(read: User) -> None:
        checked.append(read.first_name)
        if len(checked) == 1:  # commits between this read and this write, on another connection
            thread = threading.Thread(target=concurrent)
            thread.start()
            thread.join()

    updated = accounts.user_update(user=user, data={"bio": "mine"}, precondition=precondition)
    assert checked == [user.first_name, "Between"]  # checked again on the row as it is now
    assert (updated.first_name, updated.bio) == ("Between", "mine")
    events = UserEvent.objects.filter(user_id=user.pk, type="user.updated").order_by("sequence")
    assert [event.data["changed"] for event in events] == [["first_name"], ["bio"]]
    assert events.last().data["user"]["first_name"] == "Between"


def test_soft_delete_and_restore(user):
    accounts.user_soft_delete(user=user)
    assert User.objects.deleted().filter(pk=user.pk).exists()
    assert not User.objects.alive().filter(pk=user.pk).exists()
    assert user.is_deleted

    accounts.user_restore(user=user)
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
    accounts.user_update(user=user, data={})
    assert User.objects.get(pk=user.pk).updated_at == before
