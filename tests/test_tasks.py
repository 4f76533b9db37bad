"""The welcome email: queued after commit, sent by a real Celery worker on the real Redis broker."""
import time

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core import mail
from django.db import connections, transaction
from rest_framework.test import APIClient

from sidus.celery import app as celery_app
from tests.conftest import PASSWORD
from tests.servers import wait_until
from tests.smtp import SMTPServer
from users import services, tasks
from users.models import User, WelcomeEmail

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def celery_worker():
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker
    connections.close_all()


def broker_queue_length() -> int:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("celery")


def register(**fields):
    payload = {"username": "newbie", "email": "newbie@example.com", "password": PASSWORD, **fields}
    return APIClient().post("/api/v1/users/", payload)


def test_registration_sends_one_welcome_email_in_text_and_html(celery_worker):
    response = register(first_name="Nina")
    assert response.status_code == 201

    welcome = WelcomeEmail.objects.get(user_id=response.json()["id"])
    # The mail leaves inside the worker's transaction; the status commits just after.
    wait_until(lambda: WelcomeEmail.objects.get(pk=welcome.pk).status == WelcomeEmail.Status.SENT)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["newbie@example.com"] and message.subject == "Welcome to sidus"
    assert "Hello Nina" in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "<strong>sidus</strong>" in html
    welcome.refresh_from_db()
    assert welcome.sent_at is not None

    # The drain finds nothing left to send: no duplicate.
    assert tasks.drain_welcome_emails.apply().get() == 0
    assert len(mail.outbox) == 1


def test_failed_registration_queues_nothing():
    before = broker_queue_length()
    assert register(email="not-an-email").status_code == 400
    with pytest.raises(RuntimeError), transaction.atomic():
        services.user_create(username="rolledback", email="rb@example.com", password=PASSWORD)
        raise RuntimeError("the surrounding transaction fails")

    assert not User.objects.exists() and not WelcomeEmail.objects.exists()
    assert broker_queue_length() == before


def test_registration_publishes_only_after_commit():
    before = broker_queue_length()
    with transaction.atomic():
        services.user_create(username="later", email="later@example.com", password=PASSWORD)
        assert broker_queue_length() == before
    assert broker_queue_length() == before + 1


def test_smtp_errors_are_retried_until_the_email_goes_out(celery_worker, settings):
    with SMTPServer(refuse=1) as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        assert register().status_code == 201
        wait_until(lambda: smtp.inbox.messages, timeout=15)
        time.sleep(0.3)
    assert len(smtp.inbox.to("newbie@example.com")) == 1
    assert smtp.inbox.refuse == 0  # the first attempt was refused, the retry went through


def test_drain_sends_what_the_broker_never_got_and_only_once(settings):
    settings.WELCOME_EMAIL_DRAIN_GRACE = 0
    user = User.objects.create_user("stranded", "stranded@example.com", PASSWORD)
    WelcomeEmail.objects.create(user=user)  # as if the publish after commit had failed

    assert tasks.drain_welcome_emails() == 1
    assert tasks.drain_welcome_emails() == 0
    assert [m.to for m in mail.outbox] == [["stranded@example.com"]]


def test_drain_leaves_emails_pending_while_smtp_is_down(settings):
    from tests.servers import free_port

    settings.WELCOME_EMAIL_DRAIN_GRACE = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 1
    welcome = WelcomeEmail.objects.create(user=User.objects.create_user("wait", "wait@example.com", PASSWORD))

    assert tasks.drain_welcome_emails() == 0
    welcome.refresh_from_db()
    assert welcome.status == WelcomeEmail.Status.PENDING


def test_deleted_user_gets_no_welcome_email():
    user = User.objects.create_user("quitter", "quitter@example.com", PASSWORD)
    welcome = WelcomeEmail.objects.create(user=user)
    services.user_soft_delete(user=user)

    assert tasks.send_welcome_email(welcome.pk) is False
    welcome.refresh_from_db()
    assert welcome.status == WelcomeEmail.Status.SKIPPED and mail.outbox == []


def test_a_refused_address_fails_alone_and_does_not_block_the_outbox(settings, caplog):
    settings.WELCOME_EMAIL_DRAIN_GRACE = 0
    with SMTPServer(unknown=("nobody@example.com",)) as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        bad = WelcomeEmail.objects.create(user=User.objects.create_user("nobody", "nobody@example.com", PASSWORD))
        good = WelcomeEmail.objects.create(user=User.objects.create_user("somebody", "somebody@example.com", PASSWORD))

        assert tasks.drain_welcome_emails() == 1
        assert tasks.drain_welcome_emails() == 0
    bad.refresh_from_db()
    good.refresh_from_db()
    assert (bad.status, good.status) == (WelcomeEmail.Status.FAILED, WelcomeEmail.Status.SENT)
    assert len(smtp.inbox.to("somebody@example.com")) == 1
    assert "nobody@example.com" not in caplog.text
