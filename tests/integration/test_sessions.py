"""Sessions a user can see and end: one row per login, ended for good, on every worker."""
import asyncio
import base64
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.support import PASSWORD
from tests.support import authorization as auth
from tests.support import token_pair_of
from users import accounts
from users.models import Session, User

SESSIONS = "/api/v1/auth/sessions/"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) " \
        "Version/17.0 Mobile/15E148 Safari/604.1"
LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def login(client, user: User, user_agent: str = "", ip: str = "10.1.2.3") -> dict[str, str]:
    return token_pair_of(client, user.username, HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)


@pytest.fixture
def ann(db):
    return User.objects.create_user("ann", "ann@example.com", PASSWORD)


@pytest.mark.django_db
def test_my_sessions_are_listed_newest_first_with_their_device_and_the_current_one_marked(api_client, ann):
    phone = login(api_client, ann, PHONE, "10.0.0.7")
    laptop = login(api_client, ann, LAPTOP, "2001:db8:1:2:aaaa::1")
    library = login(api_client, ann, "", "10.9.9.9")
    Session.objects.filter(user=ann, device="Firefox on Linux").update(last_seen_at=timezone.now() + timedelta(1))
    other = User.objects.create_user("bob", "bob@example.com", PASSWORD)
    login(api_client, other, PHONE)

    response = api_client.get(SESSIONS, **auth(library))

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]
    rows = response.json()["results"]
    assert [(row["device"], row["ip"], row["current"]) for row in rows] == [
        ("Firefox on Linux", "2001:db8:1:2::", False),  # IPv6 as its /64, as the rate limits count it
        ("", "10.9.9.9", True),
        ("Mobile Safari on iOS", "10.0.0.7", False),
    ]
    assert rows[0]["user_agent"] == LAPTOP
    assert all(pair for pair in (phone, laptop))


@pytest.mark.django_db
def test_ending_one_session_stops_its_tokens_and_no_other(api_client, ann):
    phone, laptop = login(api_client, ann, PHONE), login(api_client, ann, LAPTOP)
    phone_id = Session.objects.get(user=ann, device="Mobile Safari on iOS").pk

    assert api_client.delete(f"{SESSIONS}{phone_id}/", **auth(laptop)).status_code == 204

    assert api_client.get("/api/v1/users/me/", **auth(phone)).status_code == 401
    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": phone["refresh"]}, format="json")
    assert refreshed.status_code == 401
    assert api_client.get("/api/v1/users/me/", **auth(laptop)).status_code == 200
    ended = Session.objects.get(pk=phone_id)
    assert ended.ended_at is not None and ended.end_reason == Session.EndReason.REVOKED
    # Ended already, someone else's, unknown, not an id: no such session of mine.
    other = User.objects.create_user("bob", "bob@example.com", PASSWORD)
    login(api_client, other)
    bobs = Session.objects.get(user=other).pk
    for session_id in (phone_id, bobs, "00000000-0000-0000-0000-000000000000"):
        assert api_client.delete(f"{SESSIONS}{session_id}/", **auth(laptop)).status_code == 404
    assert api_client.delete(f"{SESSIONS}nope/", **auth(laptop)).status_code == 404
    mine = Session.objects.get(user=ann, device="Firefox on Linux").pk
    current = api_client.delete(f"{SESSIONS}{mine}/", **auth(laptop))
    assert current.status_code == 409 and "log out" in current.json()["detail"]  # logout ends this one
    assert Session.objects.get(pk=bobs).ended_at is None


@pytest.mark.django_db
def test_ending_the_others_keeps_the_current_one(api_client, ann):
    pairs = [login(api_client, ann) for _ in range(3)]

    assert api_client.delete(SESSIONS, **auth(pairs[1])).status_code == 204

    assert [api_client.get("/api/v1/users/me/", **auth(pair)).status_code for pair in pairs] == [401, 200, 401]
    assert [row["current"] for row in api_client.get(SESSIONS, **auth(pairs[1])).json()["results"]] == [True]


@pytest.mark.django_db
def test_a_refresh_is_the_session_seen_and_logout_ends_it(api_client, ann):
    pair = login(api_client, ann)
    session = Session.objects.get(user=ann)
    Session.objects.filter(pk=session.pk).update(last_seen_at=timezone.now() - timedelta(hours=1))

    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]}, format="json").json()

    assert Session.objects.get(pk=session.pk).last_seen_at > timezone.now() - timedelta(minutes=1)
    logout = api_client.post("/api/v1/auth/token/blacklist/", {"refresh": refreshed["refresh"]}, format="json")
    assert logout.status_code == 200
    assert Session.objects.get(pk=session.pk).end_reason == Session.EndReason.LOGOUT
    assert api_client.get("/api/v1/users/me/", **auth(refreshed)).status_code == 401


@pytest.mark.django_db
def test_a_password_change_ends_every_session_and_starts_the_callers_new_one(api_client, ann):
    old, other = login(api_client, ann), login(api_client, ann)

    changed = api_client.post("/api/v1/auth/password/change/",
                              {"current_password": PASSWORD, "new_password": "a-new-pass-phrase-2026"},
                              format="json", **auth(old))

    assert changed.status_code == 200, changed.content
    assert {s.end_reason for s in Session.objects.filter(ended_at__isnull=False)} == {"password_change"}
    assert Session.objects.filter(user=ann, ended_at__isnull=True).count() == 1
    assert api_client.get("/api/v1/users/me/", **auth(other)).status_code == 401
    assert api_client.get("/api/v1/users/me/", **auth(changed.json())).status_code == 200


@pytest.mark.django_db
def test_leaving_ends_every_session_and_a_staff_delete_says_staff(api_client, ann):
    pair = login(api_client, ann)
    bob = User.objects.create_user("bob", "bob@example.com", PASSWORD)
    login(api_client, bob)

    left = api_client.delete("/api/v1/users/me/", {"current_password": PASSWORD}, format="json", **auth(pair))
    assert left.status_code == 204
    accounts.users_soft_delete(user_ids=[bob.pk])

    assert Session.objects.get(user=ann).end_reason == Session.EndReason.ACCOUNT_DELETED
    assert Session.objects.get(user=bob).end_reason == Session.EndReason.STAFF


@pytest.mark.django_db
def test_sessions_past_the_refresh_lifetime_are_pruned(settings, ann):
    old = accounts.session_start(user=ann, refresh_jti=uuid.uuid4().hex)
    live = accounts.session_start(user=ann, refresh_jti=uuid.uuid4().hex)
    lifetime = settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    Session.objects.filter(pk=old.pk).update(last_seen_at=timezone.now() - lifetime - timedelta(minutes=1))

    assert accounts.sessions_prune() == 1
    assert list(Session.objects.values_list("pk", flat=True)) == [live.pk]


@pytest.mark.django_db
def test_listing_and_ending_sessions_are_rate_limited(api_client, ann, settings):
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "sessions": "3/m/user"}
    pair = login(api_client, ann)

    statuses = [api_client.get(SESSIONS, **auth(pair)).status_code for _ in range(3)]
    statuses.append(api_client.delete(SESSIONS, **auth(pair)).status_code)

    assert statuses == [200, 200, 200, 429]


@pytest.mark.django_db(transaction=True)
async def test_a_workers_copy_learns_an_ended_session_within_the_staleness_bound(loading, settings):
    from asgiref.sync import sync_to_async

    from users.runtime import current

    ended_sessions = current().ended_sessions

    user = await sync_to_async(User.objects.create_user)("cy", "cy@example.com", PASSWORD)
    session = await sync_to_async(accounts.session_start)(user=user, refresh_jti=uuid.uuid4().hex)
    assert ended_sessions.fresh and not ended_sessions.ended(session.pk.hex)

    await sync_to_async(accounts.session_end)(user_id=user.pk, session_id=session.pk, reason="revoked")
    started = time.monotonic()
    while not ended_sessions.ended(session.pk.hex):
        assert time.monotonic() - started < settings.USER_CACHE_MAX_STALENESS
        await asyncio.sleep(0.01)


# --- My security log ----------------------------------------------------------------------------------

LOG = "/api/v1/users/me/events/"


@pytest.mark.django_db
def test_my_security_log_tells_logins_failures_endings_and_staff_without_naming_them(api_client, ann):
    login(api_client, ann, PHONE, "10.0.0.7")
    failed = api_client.post("/api/v1/auth/token/", {"username": "ANN", "password": "wrong-guess-1"},
                             format="json", HTTP_USER_AGENT=LAPTOP, REMOTE_ADDR="10.6.6.6")
    assert failed.status_code == 401
    laptop = login(api_client, ann, LAPTOP, "10.0.0.8")
    api_client.delete(SESSIONS, **auth(laptop))  # the phone's session ends: revoked
    api_client.post("/api/v1/auth/token/blacklist/", {"refresh": laptop["refresh"]}, format="json")
    login(api_client, ann, "", "10.0.0.5")
    accounts.users_soft_delete(user_ids=[ann.pk])  # the admin's action: staff, and its live session ends
    accounts.users_restore(user_ids=[ann.pk])
    me = login(api_client, ann, "", "10.0.0.9")

    response = api_client.get(LOG, **auth(me))

    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    rows = [(row["type"], row["reason"], row["ip"], row["device"], row["by"]) for row in response.json()["results"]]
    assert rows == [
        ("user.logged_in", None, "10.0.0.9", "", "you"),
        ("user.restored", None, None, None, "staff"),
        ("user.session_ended", "staff", "10.0.0.5", "", "staff"),
        ("user.deleted", None, None, None, "staff"),
        ("user.login_alert_sent", None, "10.0.0.5", "", "you"),  # a new device on this network
        ("user.logged_in", None, "10.0.0.5", "", "you"),
        ("user.logged_out", None, "10.0.0.8", "Firefox on Linux", "you"),
        ("user.session_ended", "revoked", "10.0.0.7", "Mobile Safari on iOS", "you"),
        ("user.login_alert_sent", None, "10.0.0.8", "Firefox on Linux", "you"),
        ("user.logged_in", None, "10.0.0.8", "Firefox on Linux", "you"),
        ("user.login_failed", None, "10.6.6.6", "Firefox on Linux", None),  # "ANN": the same account
        ("user.logged_in", None, "10.0.0.7", "Mobile Safari on iOS", "you"),  # the first login: no alert
        ("user.registered", None, None, None, "you"),
    ]
    assert set(response.json()["results"][0]) == {"id", "type", "time", "session", "reason", "ip", "device", "by"}


@pytest.mark.django_db
def test_the_log_pages_by_cursor_and_shows_only_mine(api_client, ann):
    for _ in range(60):
        accounts.session_start(user=ann, refresh_jti=uuid.uuid4().hex)
    bob = User.objects.create_user("bob", "bob@example.com", PASSWORD)
    accounts.session_start(user=bob, refresh_jti=uuid.uuid4().hex)
    me = login(api_client, ann)

    first = api_client.get(LOG, **auth(me)).json()
    second = api_client.get(first["next"], **auth(me)).json()

    # 61 logins, the alert of the last (from a network the others had not), and the registration
    assert len(first["results"]) == 50 and len(second["results"]) == 13
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert len(set(ids)) == 63 and second["next"] is None
    assert api_client.get(LOG + "?cursor=bogus", **auth(me)).status_code == 404
    assert api_client.get(LOG).status_code == 401


def _cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


# Positions no ordering field can hold: not a number, a float, NaN, past a bigint, a date where a
# number goes, a NUL, a date that is none.
BAD_POSITIONS = ["p=abc", "p=1e5", "p=NaN", "p=99999999999999999999", "p=2026-01-01", "p=%00", "p=2026-13-45"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", [LOG, "/api/v1/auth/sessions/"])
@pytest.mark.parametrize("position", BAD_POSITIONS)
def test_a_cursor_whose_position_is_not_the_orderings_is_the_documented_404(api_client, ann, path, position):
    me = login(api_client, ann)
    cursor = _cursor(position)
    response = api_client.get(f"{path}?cursor={cursor}", **auth(me))
    assert response.status_code == 404, response.content
    assert response.json() == {"detail": "Invalid cursor"}  # and never the input
    good = api_client.get(path, **auth(me))
    assert good.status_code == 200
