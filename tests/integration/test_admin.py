"""The Django admin: listing deleted users, soft delete and restore, no self-promotion."""
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.support import PASSWORD, asgi_get, bearer, redis_keys
from users.cache import user_cache_key
from users.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(make_user) -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def staff(make_user) -> User:
    from django.contrib.auth.models import Permission

    member = make_user(is_staff=True)
    member.user_permissions.set(Permission.objects.filter(codename__in=["view_user", "change_user", "delete_user"]))
    return member


def changelist(client: Client, **params) -> str:
    response = client.get(reverse("admin:users_user_changelist"), params)
    assert response.status_code == 200
    return response.content.decode()


def test_changelist_lists_searches_and_filters_including_deleted(superuser_client, make_user):
    alive = make_user(username="alive-one")
    gone = make_user(username="gone-one")
    superuser_client.post(reverse("admin:users_user_delete", args=[gone.pk]), {"post": "yes"})

    page = changelist(superuser_client)
    assert ">alive-one</a>" in page and ">gone-one</a>" not in page  # hidden unless asked for
    every = changelist(superuser_client, deleted="all")
    assert ">alive-one</a>" in every and ">gone-one</a>" in every
    assert 'class="field-deleted"><img src="/static/admin/img/icon-yes.svg" alt="True">' in every
    assert "gone-one" in changelist(superuser_client, deleted="yes")
    assert "alive-one" not in changelist(superuser_client, deleted="yes")
    assert "gone-one" not in changelist(superuser_client, deleted="no")
    assert "alive-one" not in changelist(superuser_client, q="gone")
    assert alive.pk


def test_delete_view_soft_deletes_and_the_api_stops_serving(
    superuser_client, user, django_capture_on_commit_callbacks
):
    api = APIClient()
    headers = bearer(user)
    assert asgi_get(f"/api/v1/users/{user.pk}/").status_code == 200  # now in L2

    confirm = superuser_client.get(reverse("admin:users_user_delete", args=[user.pk]))
    assert confirm.status_code == 200
    assert "<title>Soft-delete this user?" in confirm.content.decode()
    assert "The row is kept" in confirm.content.decode() and "will be deleted" not in confirm.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(reverse("admin:users_user_delete", args=[user.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert "soft-deleted (the row is kept)" in superuser_client.get(response.url).content.decode()

    user.refresh_from_db()
    assert user.deleted_at is not None and not user.is_active
    assert api.get(f"/api/v1/users/{user.pk}/").status_code == 404
    assert api.get("/api/v1/users/me/", **headers).status_code == 401
    token = api.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD})
    assert token.status_code == 401


def test_one_bulk_soft_delete_and_one_restore_are_offered(superuser_client, make_user):
    make_user()
    page = changelist(superuser_client)
    assert page.count('value="delete_selected"') == 1 and "Soft delete selected users" in page
    assert page.count('value="restore"') == 1 and 'value="soft_delete"' not in page


def test_bulk_soft_delete_confirmation_says_the_rows_are_kept(superuser_client, make_user):
    users = [make_user() for _ in range(2)]
    data = {"action": "delete_selected", "_selected_action": [u.pk for u in users]}
    page = superuser_client.post(reverse("admin:users_user_changelist"), data).content.decode()
    assert "The rows are kept" in page and "will be deleted" not in page
    assert "<title>Soft-delete the selected users?" in page and "Delete multiple objects" not in page
    assert all(u.username in page for u in users)
    assert User.objects.deleted().count() == 0  # nothing happens before the confirmation


def test_bulk_soft_delete_clears_every_cached_user(superuser_client, make_user, django_capture_on_commit_callbacks):
    users = [make_user() for _ in range(3)]
    api = APIClient()
    for u in users:
        asgi_get(f"/api/v1/users/{u.pk}/")
    assert {user_cache_key(u.pk).encode() for u in users} <= redis_keys()

    data = {"action": "delete_selected", "_selected_action": [u.pk for u in users], "post": "yes"}
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.post(reverse("admin:users_user_changelist"), data)
    assert response.status_code == 302

    assert User.objects.filter(pk__in=[u.pk for u in users]).count() == 3  # rows kept
    assert User.objects.deleted().count() == 3
    assert not {user_cache_key(u.pk).encode() for u in users} & redis_keys()
    assert all(api.get(f"/api/v1/users/{u.pk}/").status_code == 404 for u in users)


def test_restore_action_brings_users_back(superuser_client, make_user, django_capture_on_commit_callbacks):
    from users.accounts import users_soft_delete

    users = [make_user() for _ in range(2)]
    users_soft_delete(user_ids=[u.pk for u in users])
    data = {"action": "restore", "_selected_action": [u.pk for u in users]}
    with django_capture_on_commit_callbacks(execute=True):  # from the list of the deleted, as staff see them
        superuser_client.post(reverse("admin:users_user_changelist") + "?deleted=yes", data)

    assert User.objects.alive().filter(pk__in=[u.pk for u in users]).count() == 2
    assert all(APIClient().get(f"/api/v1/users/{u.pk}/").status_code == 200 for u in users)
    login = APIClient().post("/api/v1/auth/token/", {"username": users[0].username, "password": PASSWORD})
    assert login.status_code == 200


def test_staff_cannot_raise_their_own_privileges(staff):
    client = Client()
    client.force_login(staff)
    url = reverse("admin:users_user_change", args=[staff.pk])
    form = client.get(url)
    assert form.status_code == 200
    assert 'name="is_superuser"' not in form.content.decode()

    response = client.post(url, {
        "username": staff.username, "email": staff.email, "is_active": "on", "is_staff": "on",
        "is_superuser": "on", "bio": "promoted myself?", "first_name": "", "last_name": "",
    })
    assert response.status_code == 302  # the form was accepted; the privilege fields were not
    staff.refresh_from_db()
    assert staff.bio == "promoted myself?"
    assert not staff.is_superuser
    assert staff.user_permissions.count() == 3


def test_superuser_can_grant_staff(superuser_client, user):
    url = reverse("admin:users_user_change", args=[user.pk])
    response = superuser_client.post(url, {
        "username": user.username, "email": user.email, "is_active": "on", "is_staff": "on",
        "bio": "", "first_name": "", "last_name": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    user.refresh_from_db()
    assert user.is_staff


def test_admin_add_user_with_duplicate_username_in_other_case_is_a_form_error(superuser_client, user):
    response = superuser_client.post(reverse("admin:users_user_add"), {
        "username": user.username.upper(), "password1": "An0ther-Passw0rd!", "password2": "An0ther-Passw0rd!",
        "usable_password": "true",
    })
    assert response.status_code == 200  # the form again, with an error, not a 500
    assert User.objects.filter(username__iexact=user.username).count() == 1


def test_the_outbox_is_visible_read_only(superuser_client, user):
    from users.models import OutboxEmail

    email = OutboxEmail.objects.create(user=user, kind="welcome", to=user.email)
    response = superuser_client.get(reverse("admin:users_outboxemail_changelist"))
    assert response.status_code == 200 and user.username in response.content.decode()
    assert superuser_client.get(reverse("admin:users_outboxemail_add")).status_code == 403
    page = superuser_client.get(reverse("admin:users_outboxemail_change", args=[email.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()  # a view, not a form
    assert superuser_client.get(reverse("admin:users_outboxemail_delete", args=[email.pk])).status_code == 403


def test_the_changelist_counts_live_sessions_and_last_activity_in_one_query(superuser_client, make_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from users import accounts

    def queries_for(count: int) -> int:
        users = [make_user() for _ in range(count - User.objects.count() + 1)]
        for user in users:
            accounts.session_start(user=user, refresh_jti=uuid.uuid4().hex)
        with CaptureQueriesContext(connection) as captured:
            page = changelist(superuser_client)
        assert page.count('class="field-live_sessions">1<') == len(users) or count > 100
        return len(captured)

    few = queries_for(1)
    assert queries_for(100) == few
    print(f"\nthe user changelist: {few} queries for 1 user and for 100")
    assert "Active in the last 30 days" in changelist(superuser_client)
    active = changelist(superuser_client, active="30d")
    assert active.count('class="field-live_sessions">1<') == 100  # the staff user has no session


# --- Every staff change is staff's, and one that ends a way in ends the sessions visibly ------------


def _log(user: User) -> list[tuple[str, str | None, str]]:
    """The user's security log as the API shows it: type, reason, by."""
    from users.api.serializers import SecurityEventSerializer
    from users.models import UserEvent

    rows = SecurityEventSerializer(UserEvent.objects.filter(user=user).order_by("sequence"), many=True).data
    return [(row["type"], row["reason"], row["by"]) for row in rows]


def _login(user: User) -> dict[str, str]:
    response = APIClient().post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD},
                                format="json")
    assert response.status_code == 200
    return response.json()


def _live_sessions(user: User) -> int:
    from users import accounts

    return accounts.sessions_live(user=user).count()


@pytest.mark.parametrize("usable", [True, False])
def test_a_password_set_in_the_admin_ends_the_sessions_as_staffs(
        superuser_client, user, usable, django_capture_on_commit_callbacks):
    from users.models import OutboxEmail

    _login(user), _login(user)
    form = {"password1": "staff-chosen-horse-4", "password2": "staff-chosen-horse-4", "usable_password": "true"}
    if not usable:
        form = {"usable_password": "false", "unset-password": "1"}
    response = superuser_client.post(reverse("admin:auth_user_password_change", args=[user.pk]), form)
    assert response.status_code == 302, response.content.decode()[:2000]

    user.refresh_from_db()
    assert user.has_usable_password() is usable
    assert _live_sessions(user) == 0
    assert set(user.sessions.values_list("end_reason", flat=True)) == {"staff"}
    assert _log(user)[-3:] == [("user.password_changed", None, "staff"), ("user.session_ended", "staff", "staff"),
                               ("user.session_ended", "staff", "staff")]
    assert OutboxEmail.objects.filter(user=user, kind=OutboxEmail.Kind.PASSWORD_CHANGED).exists()


def _change_form(client: Client, user: User, **changes) -> None:
    """Post the admin's change form of `user` as it shows it, with `changes`."""
    form = client.get(reverse("admin:users_user_change", args=[user.pk])).context["adminform"].form
    data = {name: form[name].value() for name, field in form.fields.items()
            if not field.disabled and name not in ("date_joined", "last_login")}
    data = {name: value for name, value in data.items() if value not in (None, False)}  # unticked: not sent
    data.update(date_joined_0=user.date_joined.strftime("%Y-%m-%d"),
                date_joined_1=user.date_joined.strftime("%H:%M:%S"), **changes)
    response = client.post(reverse("admin:users_user_change", args=[user.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_a_user_made_inactive_in_the_admin_loses_every_session_as_staffs(superuser_client, user):
    tokens = _login(user)
    _change_form(superuser_client, user, is_active=False)

    user.refresh_from_db()
    assert not user.is_active and _live_sessions(user) == 0
    assert _log(user)[-1] == ("user.session_ended", "staff", "staff")
    assert APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]},
                            format="json").status_code == 401


def test_an_address_changed_in_the_admin_is_staffs_unverified_and_told_to_the_old_one(
        superuser_client, user, django_capture_on_commit_callbacks):
    from users.models import OutboxEmail

    old = user.email
    User.objects.filter(pk=user.pk).update(email_verified=True)
    user.refresh_from_db()
    _change_form(superuser_client, user, email="new-address@example.com", bio="set by staff",
                 email_verified="on")
    user.refresh_from_db()
    assert (user.email, user.bio) == ("new-address@example.com", "set by staff")
    assert _log(user)[-2:] == [("user.email_changed", None, "staff"), ("user.updated", None, "staff")]
    assert OutboxEmail.objects.filter(user=user, kind=OutboxEmail.Kind.EMAIL_CHANGED, to=old).exists()


def test_a_pending_address_change_shows_on_the_users_page_and_staff_can_cancel_it(superuser_client, user):
    from users import accounts
    from users.mail import links
    from users.models import EmailChange

    accounts.email_change_request(user=user, new_email="pending@example.com")
    page = superuser_client.get(reverse("admin:users_user_change", args=[user.pk])).content.decode()
    assert "to pending@example.com, asked" in page
    response = superuser_client.post(reverse("admin:users_user_changelist"),
                                     {"action": "cancel_email_changes", "_selected_action": [user.pk]})
    assert response.status_code == 302
    change = EmailChange.objects.get()
    assert change.cancelled_at is not None
    token = links.email_change_confirm_link(change).split("token=")[1]
    assert APIClient().post("/api/v1/auth/email/change/confirm/", {"token": token}, format="json").status_code == 400


def test_a_users_sessions_read_as_words_and_minutes_and_events_name_their_user(superuser_client, user):
    from users import accounts
    from users.models import Session

    session = accounts.session_start(user=user, refresh_jti=uuid.uuid4().hex, ip="10.0.0.1")
    accounts.sessions_end(user=user, reason=Session.EndReason.STAFF)
    page = superuser_client.get(reverse("admin:users_user_change", args=[user.pk])).content.decode()
    assert "<td>ended by staff</td>" in page and "overflow-x: auto" in page
    assert f"<td>{session.created_at:%Y-%m-%d %H:%M}</td>" in page and "+00:00" not in page.split("Sessions")[-1]
    events = superuser_client.get(reverse("admin:users_userevent_changelist")).content.decode()
    assert f'<td class="field-user nowrap">{user.username}</td>' in events
