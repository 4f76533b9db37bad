"""User events: recorded in the change's transaction by every way of changing a user, numbered in
commit order, published by the relay to a real RabbitMQ with confirms, in order per user, and
consumed and replayed by the two management commands."""
import io
import json
import logging
import threading
import uuid
from pathlib import Path

import jsonschema
import pyotp
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings
from kombu import Connection, Queue
from rest_framework.test import APIClient

from tests.authenticator import SoftAuthenticator
from tests.support import PASSWORD, bearer
from users import accounts
from users.events.cloudevents import CONTENT_TYPE, Outgoing, encode, envelope
from users.events.relay import BrokerUnavailable, Publisher, Relay, events_release
from users.mail import links
from users.models import User, UserEvent

SCHEMAS = Path(__file__).resolve().parents[2] / "users" / "events" / "schemas"
NEW_PASSWORD = "An0ther-long-passphrase!"


def events_of(user: User) -> list[tuple[int, str]]:
    return list(UserEvent.objects.filter(user_id=user.pk).order_by("sequence").values_list("sequence", "type"))


def types_of(user: User) -> list[str]:
    return [type for _, type in events_of(user)]


# --- Recording ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_change_of_the_account_lifecycle_records_its_event_in_order():
    user = accounts.user_create(username="eve", email="eve@example.com", password=PASSWORD)
    accounts.user_update(user=user, data={"bio": "new", "first_name": "Eve"})
    accounts.user_update(user=user, data={"bio": "new"})  # the same value: no change, no event
    accounts.email_verify(user=user)
    accounts.email_change_request(user=user, new_email="eve2@example.com")
    accounts.email_change_confirm(change=user.email_changes.get())
    accounts.password_change(user=user, new_password=NEW_PASSWORD)
    accounts.user_soft_delete(user=user)
    accounts.users_restore(user_ids=[user.pk])
    assert events_of(user) == list(enumerate([
        "user.registered", "user.updated", "user.email_verified", "user.email_change_requested",
        "user.email_changed", "user.password_changed", "user.deleted", "user.restored"], start=1))
    updated = UserEvent.objects.get(user_id=user.pk, type="user.updated")
    assert updated.data["changed"] == ["first_name", "bio"] and "email" not in updated.data
    assert UserEvent.objects.get(user_id=user.pk, type="user.email_changed").data["email"] == "eve2@example.com"
    assert "email" not in UserEvent.objects.get(user_id=user.pk, type="user.email_change_requested").data
    assert User.objects.get(pk=user.pk).event_sequence == 8


# What docs/events.md says each type publishes besides the public profile: the address only in the
# three events about it.
PUBLISHED = {"user.registered": {"email"}, "user.updated": {"changed"}, "user.email_changed": {"email"},
             "user.email_verified": {"email"}, "user.logged_in": {"session"}, "user.logged_out": {"session"},
             "user.session_ended": {"session", "reason"}, "user.login_alert_sent": {"session"},
             **{f"user.{kind}": {"method"} for kind in ("mfa_enabled", "mfa_disabled", "recovery_codes_generated",
                                                        "recovery_code_used", "passkey_added", "passkey_removed",
                                                        "mfa_failed")}}


def live_a_whole_account(username: str) -> User:
    """Every kind of change an account goes through, so that each event type is recorded."""
    user = accounts.user_create(username=username, email=f"{username}@example.com", password=PASSWORD)
    accounts.user_update(user=user, data={"bio": "b"})
    accounts.email_verify(user=user)
    secret = accounts.totp_begin(user=user)["secret"]
    codes = accounts.totp_confirm(user=user, code=pyotp.TOTP(secret).now())
    with pytest.raises(accounts.FactorNotValid):
        accounts.factor_verify(user=user, code="000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    accounts.factor_verify(user=user, code=codes[0])
    accounts.recovery_codes_regenerate(user=user)
    device = SoftAuthenticator()
    passkey, _ = accounts.passkey_add(user=user, credential=device.create(
        accounts.passkey_registration_options(user=user)), name="laptop")
    accounts.passkey_remove(user=user, passkey_id=passkey.pk)
    accounts.totp_disable(user=user)
    session = accounts.session_start(user=user, refresh_jti=uuid.uuid4().hex, ip="10.9.8.7", user_agent="curl/8")
    accounts.session_start(user=user, refresh_jti=uuid.uuid4().hex, ip="10.1.1.1", login=True)  # an alert
    accounts.login_failed(username=username, ip="10.9.8.7", user_agent="curl/8")
    accounts.session_logout(session_id=session.pk.hex, refresh_jti=session.refresh_jti)
    accounts.email_change_request(user=user, new_email=f"{username}2@example.com")
    change = user.email_changes.get()
    accounts.email_change_confirm(change=change)
    accounts.email_change_revert(change=change)  # ends the alert's session
    user.refresh_from_db()
    accounts.account_secure(user_id=user.pk, session_epoch=user.session_epoch, since=None)
    accounts.password_change(user=user, new_password=NEW_PASSWORD)
    accounts.user_soft_delete(user=user)
    accounts.users_restore(user_ids=[user.pk])
    user.refresh_from_db()
    return user


@pytest.mark.django_db
def test_events_publish_the_public_profile_and_the_address_only_where_the_docs_say():
    user = live_a_whole_account("hidden")
    events = list(UserEvent.objects.filter(user_id=user.pk))
    assert {event.type for event in events} == set(UserEvent.Type.values)
    for event in events:
        text = json.dumps(event.data)
        assert user.password not in text and "pbkdf2" not in text and "argon2" not in text
        assert set(event.data["user"]) == {"id", "username", "first_name", "last_name", "bio", "date_joined"}
        assert set(event.data) - {"user"} == PUBLISHED.get(event.type, set()), event.type
        assert "10.9.8.7" not in text and "10.1.1" not in text and "curl" not in text  # the log's context stays


@pytest.mark.django_db
def test_a_change_that_rolls_back_records_nothing():
    user = accounts.user_create(username="undone", email="undone@example.com", password=PASSWORD)
    with pytest.raises(RuntimeError), transaction.atomic():
        accounts.user_update(user=user, data={"bio": "never"})
        raise RuntimeError("rolled back")
    assert types_of(user) == ["user.registered"]
    assert User.objects.get(pk=user.pk).event_sequence == 1


@pytest.mark.django_db
def test_the_api_records_registration_both_patch_paths_and_leaving(settings):
    settings.RATE_LIMITS_ENABLED = False
    client = APIClient()
    response = client.post("/api/v1/users/", {"username": "api", "email": "api@example.com", "password": PASSWORD},
                           format="json")
    assert response.status_code == 201
    user = User.objects.get(username="api")
    client.credentials(HTTP_AUTHORIZATION=bearer(user)["HTTP_AUTHORIZATION"])
    assert client.patch("/api/v1/users/me/", {"bio": "via django"}, format="json").status_code == 200
    me = client.get("/api/v1/users/me/")
    assert client.patch("/api/v1/users/me/", {"username": "api2"}, format="json",
                        HTTP_IF_MATCH=me["ETag"]).status_code == 200
    fresh = User.objects.get(pk=user.pk)
    link = {"uid": links.uid_encode(fresh), "token": links.email_verification_token.make_token(fresh)}
    assert client.post("/api/v1/auth/email/verify/", link, format="json").status_code == 204
    assert client.delete("/api/v1/users/me/", {"current_password": PASSWORD}, format="json").status_code == 204
    assert types_of(user) == ["user.registered", "user.logged_in", "user.updated", "user.updated",
                              "user.email_verified", "user.deleted", "user.session_ended"]
    assert UserEvent.objects.filter(user_id=user.pk, type="user.updated").last().data["changed"] == ["username"]


@pytest.mark.django_db(transaction=True)
async def test_the_lean_patch_records_the_event_django_would(asgi_client, loading, listening):
    from asgiref.sync import sync_to_async

    from tests.support import abearer as auth
    from tests.support import auser_factory as make

    user = await make("leanevents", bio="old")
    # Django answers the first, the edge the next two; the fields in the body's order, not the events'
    for bio in ("one", "two", "two"):
        body = {"bio": bio, "first_name": f"First {bio}"}
        response = await asgi_client.patch("/api/v1/users/me/", json=body, headers=await auth(user))
        assert response.status_code == 200
    recorded = await sync_to_async(lambda: list(
        UserEvent.objects.filter(user_id=user.pk).exclude(type="user.logged_in").order_by("sequence")))()
    assert [e.type for e in recorded] == ["user.registered", "user.updated", "user.updated"]  # each auth(): a login
    assert recorded[1].data["changed"] == recorded[2].data["changed"] == ["first_name", "bio"]
    assert recorded[2].data["user"] == {**recorded[1].data["user"], "bio": "two", "first_name": "First two"}


@pytest.mark.django_db
def test_the_admin_records_its_changes_and_its_soft_deletes(admin_client):
    user = accounts.user_create(username="staffed", email="staffed@example.com", password=PASSWORD)
    page = admin_client.get(f"/admin/users/user/{user.pk}/change/")
    form = {key: value for key, value in page.context["adminform"].form.initial.items() if value is not None}
    form.update({"username": "staffed", "email": "staffed@example.com", "first_name": "Changed", "bio": "",
                 "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "email_verified": "", "is_active": "on"})
    form.pop("password", None)
    for key in ("groups", "user_permissions", "last_login", "date_joined", "deleted_at", "updated_at"):
        form.pop(key, None)
    response = admin_client.post(f"/admin/users/user/{user.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    admin_client.post("/admin/users/user/",
                      {"action": "delete_selected", "_selected_action": [user.pk], "post": "yes"})
    admin_client.post("/admin/users/user/?deleted=yes", {"action": "restore", "_selected_action": [user.pk]})
    admin_client.post(f"/admin/users/user/{user.pk}/password/",
                      {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert types_of(user) == ["user.registered", "user.updated", "user.deleted", "user.restored",
                              "user.password_changed"]


@pytest.mark.django_db
def test_management_commands_record_too(monkeypatch):
    call_command("createsuperuser", "--noinput", username="root2", email="root2@example.com", stdout=io.StringIO())
    user = User.objects.get(username="root2")
    monkeypatch.setattr("getpass.getpass", lambda *args, **kwargs: NEW_PASSWORD)
    call_command("changepassword", "root2", stdout=io.StringIO())
    assert types_of(user) == ["user.registered", "user.password_changed"]


@pytest.mark.django_db(transaction=True)
def test_a_users_events_are_numbered_in_commit_order_not_start_order():
    user = accounts.user_create(username="racer", email="racer@example.com", password=PASSWORD)
    first_holds_lock, second_started = threading.Event(), threading.Event()
    done = []

    def first() -> None:
        with transaction.atomic():
            accounts.user_update(user=User.objects.get(pk=user.pk), data={"bio": "first"})
            first_holds_lock.set()
            second_started.wait(5)
            threading.Event().wait(0.3)  # the second is now waiting on the row lock
            done.append("first")
        connection.close()

    def second() -> None:
        first_holds_lock.wait(5)
        second_started.set()
        accounts.user_update(user=User.objects.get(pk=user.pk), data={"last_name": "second"})
        done.append("second")
        connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert done == ["first", "second"]
    updates = UserEvent.objects.filter(user_id=user.pk, type="user.updated").order_by("sequence")
    assert [(e.sequence, e.data["changed"]) for e in updates] == [(2, ["bio"]), (3, ["last_name"])]


# --- The wire format ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_type_has_a_json_schema_and_real_events_match_it(settings):
    settings.EVENTS_SOURCE = "sidus-test"
    user = live_a_whole_account("schema")
    events = list(UserEvent.objects.filter(user_id=user.pk))
    assert {event.type for event in events} == set(UserEvent.Type.values)
    assert {path.stem for path in SCHEMAS.glob("*.json")} == set(UserEvent.Type.values)
    for event in events:
        schema = json.loads((SCHEMAS / f"{event.type}.json").read_text())
        document = json.loads(json.dumps(envelope(event)))
        jsonschema.validate(document, schema, format_checker=jsonschema.FormatChecker())
        assert document["source"] == "sidus-test" and document["subject"] == str(user.pk)
        assert document["id"] == str(event.id) and document["time"].endswith("Z")


@pytest.mark.django_db
def test_the_cloudevents_sdk_reads_every_event_with_its_counter_under_our_own_name(settings):
    """`sequence` is the CloudEvents sequence extension's (a String, ordered as text); the per-user
    counter is `subjectsequence`, an Integer extension of ours."""
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent

    user = live_a_whole_account("sdk")
    events = list(UserEvent.objects.filter(user_id=user.pk).order_by("sequence"))
    parsed = [JSONFormat().read(CloudEvent, encode(Outgoing.of(event))) for event in events]
    assert [event.get_extension("subjectsequence") for event in parsed] == list(range(1, len(events) + 1))
    texts = [event.get_extension("sequence") for event in parsed]
    assert sorted(texts) == texts and int(texts[-1]) == len(events) and len(set(map(len, texts))) == 1
    assert [event.get_type() for event in parsed] == [event.type for event in events]
    assert parsed[0].get_data() == events[0].data and parsed[0].get_subject() == str(user.pk)


# --- The relay ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_relay_publishes_persistent_confirmed_cloudevents_and_marks_them(exchange):
    user = accounts.user_create(username="relayed", email="relayed@example.com", password=PASSWORD)
    accounts.user_update(user=user, data={"bio": "x"})
    relay = Relay()
    assert relay.relay_once() == 1 and relay.relay_once() == 1 and relay.relay_once() == 0
    relay.publisher.close()
    messages = exchange.messages()
    assert [m.delivery_info["routing_key"] for m in messages] == ["user.registered", "user.updated"]
    first = messages[0]
    assert first.content_type == CONTENT_TYPE and first.properties["delivery_mode"] == 2
    body = json.loads(first.body)
    assert first.properties["message_id"] == body["id"]
    assert body["subjectsequence"] == 1 and body["sequence"] == "1".zfill(20)
    assert not UserEvent.objects.filter(user_id=user.pk, published_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_away_nothing_is_marked_and_nothing_is_lost(exchange, settings):
    user = accounts.user_create(username="waiting", email="waiting@example.com", password=PASSWORD)
    away = Relay(Publisher(url="amqp://guest:guest@127.0.0.1:1//", timeout=0.5))
    with pytest.raises(BrokerUnavailable):
        away.relay_once()
    assert UserEvent.objects.filter(user_id=user.pk, published_at__isnull=True).count() == 1
    warnings: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = warnings.append  # the relay's own logger: whatever other tests did to the root's
    logger = logging.getLogger("users.events.relay")
    was = logger.disabled, logger.level
    logger.disabled, logger.level = False, logging.WARNING
    logger.addHandler(handler)
    stop = threading.Event()
    thread = threading.Thread(target=away.run, args=(stop,))
    try:
        thread.start()
        threading.Event().wait(1.0)  # several retries, with backoff
    finally:
        stop.set()
        thread.join(35)
        logger.removeHandler(handler)
        logger.disabled, logger.level = was
    assert [r.getMessage().startswith("Events not published") for r in warnings] == [True]  # once per outage
    assert Relay().relay_once() == 1 and [m["type"] for m in exchange.events()] == ["user.registered"]


@pytest.mark.django_db(transaction=True)
def test_a_poison_event_is_parked_and_holds_up_only_its_own_user(exchange, settings):
    settings.EVENTS_MAX_ATTEMPTS = 2
    poisoned = accounts.user_create(username="poisoned", email="poisoned@example.com", password=PASSWORD)
    healthy = accounts.user_create(username="healthy", email="healthy@example.com", password=PASSWORD)
    # 250 letters, 500 bytes: no AMQP routing key can be this long (255 bytes at most).
    UserEvent.objects.filter(user_id=poisoned.pk).update(type="user." + "é" * 245)
    accounts.user_update(user=poisoned, data={"bio": "after the poison"})
    relay = Relay()
    relay.relay_once()  # the healthy user's event goes; the poisoned one fails a first time
    UserEvent.objects.filter(user_id=poisoned.pk).update(available_at=None)  # its backoff, passed
    relay.relay_once()
    relay.publisher.close()
    head = UserEvent.objects.get(user_id=poisoned.pk, sequence=1)
    assert head.parked_at is not None and head.attempts == 2 and "255" in head.last_error
    assert UserEvent.objects.get(user_id=poisoned.pk, sequence=2).published_at is None  # held up, in order
    assert [e["subject"] for e in exchange.events()] == [str(healthy.pk)]
    UserEvent.objects.filter(pk=head.pk).update(type="user.registered")  # staff fixed it, and release it
    assert events_release(event_ids=[head.pk]) == 1
    assert Relay().relay_once() == 1 and Relay().relay_once() == 1
    assert [e["subjectsequence"] for e in exchange.events()] == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_relays_side_by_side_never_publish_a_users_events_out_of_order(exchange, settings):
    settings.EVENTS_RELAY_POLL_INTERVAL = 0.05
    users = [accounts.user_create(username=f"side{n}", email=f"side{n}@example.com", password=PASSWORD)
             for n in range(5)]
    for round in range(8):
        for user in users:
            accounts.user_update(user=user, data={"bio": f"round {round}"})
    stop = threading.Event()
    relays = [Relay(batch=3) for _ in range(3)]
    threads = [threading.Thread(target=relay.run, args=(stop,)) for relay in relays]
    for thread in threads:
        thread.start()
    try:
        for _ in range(100):
            if not UserEvent.objects.filter(published_at__isnull=True).exists():
                break
            threading.Event().wait(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    sequences: dict[str, list[int]] = {}
    for event in exchange.events():
        sequences.setdefault(event["subject"], []).append(event["subjectsequence"])
    assert sequences == {str(user.pk): list(range(1, 10)) for user in users}


# --- The commands -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_consume_events_acks_after_its_handler_and_skips_what_it_handled(exchange, settings):
    user = accounts.user_create(username="consumed", email="consumed@example.com", password=PASSWORD)
    assert Relay().relay_once() == 1
    queue = f"{settings.EVENTS_EXCHANGE}.consumer"
    call_command("consume_events", queue=queue, bind=["user.registered"], idle_timeout=0.2, stdout=io.StringIO(),
                 stderr=io.StringIO())  # declares its queue; what came before it is not in it
    call_command("replay_events", since="2000-01-01", user=user.pk, stdout=io.StringIO())
    call_command("replay_events", since="2000-01-01", user=user.pk, stdout=io.StringIO())
    out, err = io.StringIO(), io.StringIO()
    call_command("consume_events", queue=queue, bind=["user.registered"], idle_timeout=0.3, stdout=out, stderr=err)
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [event["type"] for event in printed] == ["user.registered"]
    assert printed[0]["id"] == str(UserEvent.objects.get(user_id=user.pk).id)  # a replay keeps the id
    assert "handled 1, duplicates skipped 1" in err.getvalue()
    assert f"Waiting for events on the durable queue {queue} (bound to user.registered" in err.getvalue()
    accounts.user_create(username="waiting", email="waiting@example.com", password=PASSWORD)
    assert Relay().relay_once() == 1
    err = io.StringIO()
    call_command("consume_events", delete_queue=queue, stderr=err)  # the event it held goes with it
    assert f"deleted the queue {queue} and the 1 event(s) waiting in it" in err.getvalue()
    with Connection(settings.EVENTS_BROKER_URL) as connection, pytest.raises(connection.channel_errors):
        Queue(queue)(connection.channel()).queue_declare(passive=True)


@pytest.mark.django_db(transaction=True)
def test_a_temporary_consumer_gets_the_events_and_leaves_no_queue_behind(exchange, settings):
    err = io.StringIO()
    call_command("consume_events", temporary=True, idle_timeout=0.2, stdout=io.StringIO(), stderr=err)
    queue = err.getvalue().split("temporary queue ")[1].split(" ")[0]
    with Connection(settings.EVENTS_BROKER_URL) as connection, pytest.raises(connection.channel_errors):
        Queue(queue)(connection.channel()).queue_declare(passive=True)  # gone with its consumer
    with pytest.raises(CommandError, match="--temporary"):
        call_command("consume_events", stdout=io.StringIO(), stderr=io.StringIO())


def failing_handler(event: dict) -> None:
    raise RuntimeError("the handler failed")


@pytest.mark.django_db(transaction=True)
def test_an_event_whose_handler_fails_is_not_acked_and_comes_back(exchange, settings):
    queue = f"{settings.EVENTS_EXCHANGE}.failing"
    call_command("consume_events", queue=queue, idle_timeout=0.2, stdout=io.StringIO(), stderr=io.StringIO())
    accounts.user_create(username="retried", email="retried@example.com", password=PASSWORD)
    assert Relay().relay_once() == 1
    with pytest.raises(RuntimeError):
        call_command("consume_events", queue=queue, handler="tests.integration.test_events.failing_handler",
                     idle_timeout=5, stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()
    call_command("consume_events", queue=queue, idle_timeout=0.3, stdout=out, stderr=io.StringIO())
    assert [json.loads(line)["type"] for line in out.getvalue().splitlines()] == ["user.registered"]
    with Connection(settings.EVENTS_BROKER_URL) as connection:
        Queue(queue)(connection.channel()).delete()


@override_settings(EVENTS_BROKER_URL="amqp://guest:guest@127.0.0.1:1//", EVENTS_BROKER_TIMEOUT=0.5)
@pytest.mark.django_db
def test_replay_events_says_the_broker_is_away():
    accounts.user_create(username="replayless", email="replayless@example.com", password=PASSWORD)
    with pytest.raises(CommandError, match="unavailable"):
        call_command("replay_events", since="2000-01-01", stdout=io.StringIO())
