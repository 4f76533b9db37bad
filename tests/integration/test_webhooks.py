"""Webhooks against real HTTP receivers: the user events posted as Standard Webhooks says (verified
with its library), each endpoint's users' events in order through failures and retries, a slow
endpoint not holding up a fast one, the failed state and what staff do with it, replay, secret
rotation, and every SSRF refusal."""
import io
import json
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.receivers import Answer, Receiver
from tests.support import PASSWORD
from users import accounts, webhooks
from users.events.cloudevents import CONTENT_TYPE, Outgoing, encode
from users.models import User, UserEvent, WebhookDelivery, WebhookEndpoint
from users.webhooks.sender import Sender

pytestmark = pytest.mark.django_db(transaction=True)
Status = WebhookDelivery.Status


@pytest.fixture
def local(settings):
    """Receivers on this machine: http to 127.0.0.1 and private addresses allowed, and retries
    10 ms apart instead of the spec's minutes and hours."""
    settings.WEBHOOKS_ALLOW_HOSTS = ["127.0.0.1", "localhost"]
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_RETRY_SCHEDULE = [0.01] * 7
    return settings


@pytest.fixture
def sender(local):
    """A real sender in a thread (as each Celery worker runs one), stopped after the test."""
    senders: list[tuple[threading.Thread, threading.Event]] = []

    def start(**kwargs) -> Sender:
        stop = threading.Event()
        one = Sender(**kwargs)
        thread = threading.Thread(target=one.run, args=(stop,), daemon=True)
        thread.start()
        senders.append((thread, stop))
        return one

    yield start
    for thread, stop in senders:
        stop.set()
        thread.join(timeout=5)


def endpoint_for(receiver: Receiver, types: str = "user.*") -> tuple[WebhookEndpoint, str]:
    return webhooks.endpoint_add(url=receiver.url, event_types=types.split(","))


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.01)


def subjects(requests) -> list[tuple[str, int]]:
    return [(r.json["subject"], r.json["subjectsequence"]) for r in requests]


def test_a_delivery_is_the_brokers_cloudevent_signed_as_standard_webhooks_says(sender):
    with Receiver() as receiver:
        endpoint, secret = endpoint_for(receiver)
        assert secret.startswith("whsec_")
        user = accounts.user_create(username="ada", email="ada@example.com", password=PASSWORD)
        accounts.user_update(user=user, data={"bio": "hello"})
        sender()
        first, second = receiver.wait_for(2)
    events = list(UserEvent.objects.filter(user_id=user.pk).order_by("sequence"))
    for request, event in zip((first, second), events):
        assert request.body == encode(Outgoing.of(event))  # exactly what the broker carries
        assert request.headers["content-type"] == CONTENT_TYPE
        assert request.headers["webhook-id"] == str(event.id)
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
        assert Webhook(secret).verify(request.body, request.headers)["type"] == event.type
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.endpoints.signing.secret_new()).verify(first.body, first.headers)
    wait_until(lambda: not WebhookDelivery.objects.exclude(status=Status.DELIVERED).exists())
    delivery = WebhookDelivery.objects.get(event=events[0])
    assert (delivery.attempts, delivery.last_status, delivery.endpoint_id) == (1, 204, endpoint.pk)


def test_only_the_types_an_endpoint_wants_and_only_while_it_is_enabled(sender):
    with Receiver() as receiver:
        endpoint, _ = endpoint_for(receiver, "user.updated,user.email_*")
        user = accounts.user_create(username="bo", email="bo@example.com", password=PASSWORD)
        accounts.user_update(user=user, data={"bio": "one"})
        accounts.email_verify(user=user)
        webhooks.endpoint_enable(endpoint_id=endpoint.pk, enabled=False)
        accounts.user_update(user=user, data={"bio": "two"})  # nothing recorded for a disabled endpoint
        sender()
        time.sleep(0.3)
        assert [r.json["type"] for r in receiver.requests] == []  # disabled: nothing sent
        webhooks.endpoint_enable(endpoint_id=endpoint.pk, enabled=True)
        receiver.wait_for(2)
        time.sleep(0.2)
    assert [r.json["type"] for r in receiver.requests] == ["user.updated", "user.email_verified"]


def test_each_users_events_arrive_in_order_through_a_receiver_failing_the_first_three_attempts(sender):
    def answer(request, n):
        return Answer(status=503 if n < 3 else 200)

    with Receiver(answer) as receiver:
        endpoint_for(receiver)
        users = [accounts.user_create(username=f"u{i}", email=f"u{i}@example.com", password=PASSWORD)
                 for i in range(3)]
        for round in range(4):
            for user in users:
                accounts.user_update(user=user, data={"bio": f"bio {round}"})
        sender()
        sender()  # two senders share the work: the order holds across them
        receiver.wait_for(3 + 15)
        time.sleep(0.2)
    answered = [r for n, r in enumerate(receiver.requests) if n >= 3]
    for user in users:
        mine = [sequence for subject, sequence in subjects(answered) if subject == str(user.pk)]
        assert mine == [1, 2, 3, 4, 5]  # each once, in order
    retried = WebhookDelivery.objects.filter(attempts__gt=1)
    assert sum(d.attempts - 1 for d in retried) == 3
    assert all(d.sequence == 1 and d.status == Status.DELIVERED for d in retried)


def test_a_slow_endpoint_does_not_delay_a_fast_one(sender):
    with Receiver(lambda r, n: Answer(delay=3.0)) as slow, Receiver() as fast:
        endpoint_for(slow)
        endpoint_for(fast)
        sender(concurrency=4)
        start = time.monotonic()
        users = [accounts.user_create(username=f"s{i}", email=f"s{i}@example.com", password=PASSWORD)
                 for i in range(10)]
        fast.wait_for(10, timeout=2.0)
        took = max(r.at for r in fast.requests) - start
        assert took < 1.5, took  # while the slow one has 4 in flight and 6 waiting behind them
        assert len(slow.requests) == 4
        assert WebhookDelivery.objects.filter(user_id__in=[u.pk for u in users], status=Status.PENDING).count() >= 6


def test_a_delivery_failing_every_retry_is_failed_and_holds_only_its_users_later_events(sender, local):
    local.WEBHOOKS_RETRY_SCHEDULE = [0.01, 0.01]
    broken = {"on": True}

    def answer(request, n):
        if broken["on"] and request.json["subject"] == str(held.pk):
            return Answer(status=500, body=b"x" * 5000)
        return Answer()

    with Receiver(answer) as receiver:
        endpoint_for(receiver)
        held = accounts.user_create(username="held", email="held@example.com", password=PASSWORD)
        accounts.user_update(user=held, data={"bio": "later"})
        other = accounts.user_create(username="other", email="other@example.com", password=PASSWORD)
        sender()
        wait_until(lambda: WebhookDelivery.objects.filter(status=Status.FAILED).exists())
        failed = WebhookDelivery.objects.get(status=Status.FAILED)
        assert (failed.user_id, failed.sequence, failed.attempts, failed.last_status) == (held.pk, 1, 3, 500)
        assert failed.last_response == "x" * 1024 and failed.last_error == "answered 500"
        wait_until(lambda: WebhookDelivery.objects.get(user_id=other.pk).status == Status.DELIVERED)
        later = WebhookDelivery.objects.get(user_id=held.pk, sequence=2)
        assert (later.status, later.attempts) == (Status.PENDING, 0)  # held behind the failed one

        broken["on"] = False
        assert webhooks.deliveries_resend(delivery_ids=[failed.pk]) == 1
        wait_until(lambda: not WebhookDelivery.objects.exclude(status=Status.DELIVERED).exists())
    mine = [r for r in receiver.requests if r.json["subject"] == str(held.pk)]
    assert [r.json["subjectsequence"] for r in mine] == [1, 1, 1, 1, 2]


def test_a_dismissed_delivery_lets_its_users_later_events_go(sender, local):
    local.WEBHOOKS_RETRY_SCHEDULE = []
    with Receiver(lambda r, n: Answer(status=400 if r.json["subjectsequence"] == 1 else 200)) as receiver:
        endpoint_for(receiver)
        user = accounts.user_create(username="dis", email="dis@example.com", password=PASSWORD)
        accounts.user_update(user=user, data={"bio": "later"})
        sender()
        wait_until(lambda: WebhookDelivery.objects.filter(status=Status.FAILED).exists())
        failed = WebhookDelivery.objects.get(status=Status.FAILED)
        assert webhooks.deliveries_dismiss(delivery_ids=[failed.pk]) == 1
        receiver.wait_for(2)
    assert subjects(receiver.requests) == [(str(user.pk), 1), (str(user.pk), 2)]


def test_an_endpoint_failing_past_the_limit_is_disabled_and_the_admins_are_told(sender, local):
    local.WEBHOOKS_DISABLE_AFTER = 0
    local.ADMINS = [("", "ops@example.com")]
    with Receiver(lambda r, n: Answer(status=502)) as receiver:
        endpoint, _ = endpoint_for(receiver)
        accounts.user_create(username="dead", email="dead@example.com", password=PASSWORD)
        sender()
        wait_until(lambda: not WebhookEndpoint.objects.get(pk=endpoint.pk).enabled)
        wait_until(lambda: len(mail.outbox) == 1)
    endpoint.refresh_from_db()
    assert "failing since" in endpoint.disabled_reason
    # Never the URL, which may hold a token: the endpoint's number and host.
    assert mail.outbox[0].to == ["ops@example.com"] and "/hook" not in mail.outbox[0].body
    assert f"webhook endpoint {endpoint.pk} (127.0.0.1)" in mail.outbox[0].subject


def test_replay_sends_again_in_order_with_the_same_ids(sender):
    with Receiver() as receiver:
        endpoint, _ = endpoint_for(receiver)
        ada = accounts.user_create(username="ada", email="ada@example.com", password=PASSWORD)
        for bio in ("a", "b", "c"):
            accounts.user_update(user=ada, data={"bio": bio})
        sender()
        first = receiver.wait_for(4)
        wait_until(lambda: not WebhookDelivery.objects.exclude(status=Status.DELIVERED).exists())
        assert webhooks.deliveries_replay(endpoint_id=endpoint.pk, user_id=ada.pk, from_sequence=3) == 2
        again = receiver.wait_for(6)[4:]
        out = io.StringIO()
        call_command("webhooks", "replay", str(endpoint.pk), "--since", "2000-01-01", stdout=out)
        assert "4 event(s)" in out.getvalue()
        replayed = receiver.wait_for(10)[6:]
    assert [r.headers["webhook-id"] for r in again] == [r.headers["webhook-id"] for r in first[2:]]
    assert subjects(replayed) == subjects(first)


def test_a_rotated_secret_signs_beside_the_new_one_for_the_overlap(sender):
    with Receiver() as receiver:
        endpoint, old = endpoint_for(receiver)
        new = webhooks.secret_rotate(endpoint_id=endpoint.pk)
        user = accounts.user_create(username="rot", email="rot@example.com", password=PASSWORD)
        sender()
        (during,) = receiver.wait_for(1)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(previous_secret_until=timezone.now())
        accounts.user_update(user=user, data={"bio": "after"})
        _, after = receiver.wait_for(2)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(during.body, during.headers) and Webhook(new).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(after.body, after.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


# --- SSRF ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url, why", [
    ("http://example.com/hook", "only https"),
    ("ftp://example.com/hook", "not a URL"),
    ("https://exa mple.com/hook", "not a URL"),
    ("https://user:pw@example.com/hook", "no user name or password"),
    ("https:///hook", "not a URL"),
    ("https://127.0.0.1/hook", "not a public address"),
    ("https://10.1.2.3/hook", "not a public address"),
    ("https://169.254.169.254/latest/meta-data/", "not a public address"),
    ("https://[::1]/hook", "not a public address"),
    ("https://[::ffff:192.168.0.1]/hook", "not a public address"),
    ("https://example.com:99999/hook", "not a URL"),
])
def test_an_endpoint_url_that_is_not_https_or_names_a_private_address_is_refused(url, why):
    with pytest.raises(webhooks.InvalidEndpoint, match=why):
        webhooks.endpoint_add(url=url, event_types=["user.*"])
    assert not WebhookEndpoint.objects.exists()


def test_event_types_that_match_nothing_are_refused():
    for types in ([], ["user.updatd"], ["user.%"], ["USER.*"]):
        with pytest.raises(webhooks.InvalidEndpoint):
            webhooks.endpoint_add(url="https://example.com/hook", event_types=types)
    endpoint, _ = webhooks.endpoint_add(url="https://example.com/hook", event_types=["*", "*"])
    assert endpoint.event_types == ["*"]


def refused_delivery(receiver: Receiver) -> WebhookDelivery:
    wait_until(lambda: WebhookDelivery.objects.filter(attempts__gte=1, leased_until__isnull=True).exists())
    return WebhookDelivery.objects.get()


def test_a_name_resolving_to_loopback_is_refused_at_send_time(sender, local):
    local.WEBHOOKS_ALLOW_PRIVATE = False
    with Receiver() as receiver:
        port = receiver.server.server_port
        webhooks.endpoint_add(url=f"http://localhost:{port}/hook", event_types=["user.*"])  # a name: saved
        accounts.user_create(username="ssrf", email="ssrf@example.com", password=PASSWORD)
        sender()
        delivery = refused_delivery(receiver)
        time.sleep(0.1)
    assert receiver.requests == []
    assert delivery.last_error.startswith("refused: localhost resolves to ") and "127.0.0.1" in delivery.last_error
    assert delivery.status == Status.PENDING and delivery.last_status is None


def test_a_private_address_saved_under_the_old_rule_is_refused_at_send_time(sender, local):
    with Receiver() as receiver:
        endpoint_for(receiver)
        local.WEBHOOKS_ALLOW_PRIVATE = False
        accounts.user_create(username="old", email="old@example.com", password=PASSWORD)
        sender()
        delivery = refused_delivery(receiver)
    assert receiver.requests == [] and "not a public address" in delivery.last_error


def test_a_redirect_is_not_followed(sender):
    with Receiver() as elsewhere, Receiver(lambda r, n: Answer(307, headers={"location": elsewhere.url})) as hook:
        endpoint_for(hook)
        accounts.user_create(username="redir", email="redir@example.com", password=PASSWORD)
        sender()
        hook.wait_for(1)
        delivery = refused_delivery(hook)
        time.sleep(0.2)
    assert elsewhere.requests == []
    assert (delivery.last_status, delivery.status) == (307, Status.PENDING)
    assert delivery.last_error == "answered 307 (a redirect: not followed)"


def test_a_receiver_that_never_answers_is_cut_at_the_timeout(sender, monkeypatch):
    monkeypatch.setattr("users.webhooks.sender.TIMEOUT", 0.5)
    with Receiver(lambda r, n: Answer(delay=3)) as receiver:
        endpoint_for(receiver)
        accounts.user_create(username="slowpoke", email="slow@example.com", password=PASSWORD)
        sender()
        receiver.wait_for(1)
        delivery = refused_delivery(receiver)
    assert delivery.last_error == "no answer within 0.5 s" and delivery.last_status is None


# --- Who caused it ------------------------------------------------------------------------------


def test_every_event_says_who_caused_it_and_never_which_staff_member(admin_client, settings):
    settings.RATE_LIMITS_ENABLED = False
    client = APIClient()
    response = client.post("/api/v1/users/", {"username": "act", "email": "act@example.com", "password": PASSWORD},
                           format="json")
    assert response.status_code == 201, response.content
    user = User.objects.get(username="act")
    login = {"username": "act", "password": PASSWORD}
    access = client.post("/api/v1/auth/token/", login, format="json").json()["access"]
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.patch("/api/v1/users/me/", {"bio": "mine"}, format="json").status_code == 200
    admin_client.post("/admin/users/user/", {"action": "delete_selected", "_selected_action": [user.pk],
                                             "post": "yes"})
    accounts.users_restore(user_ids=[user.pk])  # staff's too
    accounts.user_update(user=User.objects.get(pk=user.pk), data={"bio": "tidied"})  # outside a request: the system's
    events = UserEvent.objects.filter(user_id=user.pk).order_by("sequence")
    assert [(e.type, e.actor) for e in events] == [
        ("user.registered", "user"), ("user.logged_in", "user"), ("user.updated", "user"),
        ("user.deleted", "staff"), ("user.session_ended", "staff"), ("user.restored", "staff"),
        ("user.updated", "system")]
    published = [json.loads(encode(Outgoing.of(event))) for event in events]
    assert [e["actor"] for e in published] == [e.actor for e in events]
    assert all("by" not in e["data"] for e in published)  # the security log's "by staff" stays there


# --- The command ----------------------------------------------------------------------------------


def test_the_command_adds_lists_disables_enables_and_rotates(local):
    out = io.StringIO()
    call_command("webhooks", "add", "https://hooks.example.com/sidus", "--events", "user.*", stdout=out)
    secret = out.getvalue().split("shown this once): ")[1].strip()
    endpoint = WebhookEndpoint.objects.get()
    assert Webhook(secret) and endpoint.secret != secret and secret not in str(endpoint.__dict__)
    call_command("webhooks", "disable", str(endpoint.pk), stdout=out)
    call_command("webhooks", "list", stdout=(listing := io.StringIO()))
    assert "disabled (disabled by staff)" in listing.getvalue() and "pending: 0" in listing.getvalue()
    call_command("webhooks", "enable", str(endpoint.pk), stdout=out)
    call_command("webhooks", "rotate-secret", str(endpoint.pk), stdout=(rotated := io.StringIO()))
    assert rotated.getvalue().split(": ")[-1].strip() != secret
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.previous_secret_until > timezone.now() + timedelta(hours=23)
    for args, message in ((("add", "http://hooks.example.com/", "--events", "user.*"), "only https"),
                          (("disable", "999"), "No endpoint 999"),
                          (("replay", str(endpoint.pk)), "replay from a time"),
                          (("replay", str(endpoint.pk), "--since", "yesterday"), "not an ISO 8601")):
        with pytest.raises(CommandError, match=message):
            call_command("webhooks", *args, stdout=io.StringIO())


# --- The admin --------------------------------------------------------------------------------------


def test_the_admin_adds_an_endpoint_showing_its_secret_once_and_refuses_a_bad_one(admin_client):
    page = "/admin/users/webhookendpoint/add/"
    refused = admin_client.post(page, {"url": "http://hooks.example.com/", "event_types": "user.*", "enabled": "on"})
    assert refused.status_code == 200 and "only https" in refused.content.decode()
    refused = admin_client.post(page, {"url": "https://hooks.example.com/", "event_types": "user.updatd"})
    assert "matches no event type" in refused.content.decode()
    assert not WebhookEndpoint.objects.exists()
    added = admin_client.post(page, {"url": "https://hooks.example.com/", "event_types": "user.*,user.updated",
                                     "enabled": "on"}, follow=True)
    endpoint = WebhookEndpoint.objects.get()
    shown = [str(m) for m in added.context["messages"]]
    secret = shown[0].split("shown this once): ")[1]
    assert Webhook(secret) and endpoint.event_types == ["user.*", "user.updated"] and secret not in endpoint.secret
    again = admin_client.get(f"/admin/users/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert secret not in again and endpoint.secret not in again


def test_the_admin_replays_rotates_and_sends_again_and_dismisses(admin_client, local):
    endpoint, _ = webhooks.endpoint_add(url="http://127.0.0.1:9/hook", event_types=["user.*"])
    user = accounts.user_create(username="adm", email="adm@example.com", password=PASSWORD)
    WebhookDelivery.objects.update(status=Status.DELIVERED)
    changelist = "/admin/users/webhookendpoint/"
    form = admin_client.post(changelist, {"action": "replay", "_selected_action": [endpoint.pk]})
    assert form.status_code == 200 and "Replay" in form.content.decode()
    empty = admin_client.post(changelist, {"action": "replay", "_selected_action": [endpoint.pk], "apply": "1"})
    assert "Give a time" in empty.content.decode()
    done = admin_client.post(changelist, {"action": "replay", "_selected_action": [endpoint.pk], "apply": "1",
                                          "user": user.pk, "from_sequence": 1}, follow=True)
    assert "1 event to deliver again" in done.content.decode()
    assert WebhookDelivery.objects.get().status == Status.PENDING

    rotate = {"action": "rotate_secret", "_selected_action": [endpoint.pk]}
    rotated = admin_client.post(changelist, rotate, follow=True)
    assert "New signing secret" in rotated.content.decode()
    admin_client.post(changelist, {"action": "disable", "_selected_action": [endpoint.pk]})
    assert not WebhookEndpoint.objects.get().enabled
    admin_client.post(changelist, {"action": "enable", "_selected_action": [endpoint.pk]})
    assert WebhookEndpoint.objects.get().enabled

    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(status=Status.FAILED, attempts=8)
    deliveries = "/admin/users/webhookdelivery/"
    listed = admin_client.get(f"{deliveries}?endpoint__id__exact={endpoint.pk}").content.decode()
    assert "failed" in listed and str(delivery.event_id) in listed
    admin_client.post(deliveries, {"action": "dismiss", "_selected_action": [delivery.pk]})
    assert WebhookDelivery.objects.get().status == Status.DISMISSED
    admin_client.post(deliveries, {"action": "send_again", "_selected_action": [delivery.pk]})
    assert WebhookDelivery.objects.values_list("status", "attempts").get() == (Status.PENDING, 0)
