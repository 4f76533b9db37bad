"""The outbox: emails queued after commit, sent by a real Celery worker on the real Redis broker."""
import time

import pytest
import redis
from django.conf import settings
from django.core import mail
from django.db import transaction

from tests import support
from tests.servers import wait_until
from tests.smtp import SMTPServer
from tests.support import PASSWORD
from users import accounts, tasks
from users.models import OutboxEmail, User

pytestmark = pytest.mark.django_db(transaction=True)


def outboxed(user: User) -> OutboxEmail:
    """A welcome email left pending, as if the publish after commit had failed."""
    return OutboxEmail.objects.create(user=user, kind=OutboxEmail.Kind.WELCOME, to=user.email)


def broker_queue_length() -> int:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("celery")


def register(**fields):
    return support.register(**{"username": "newbie", "email": "newbie@example.com", **fields})


def test_registration_sends_one_welcome_email_in_text_and_html(celery_worker):
    response = register(first_name="Nina")
    assert response.status_code == 201

    welcome = OutboxEmail.objects.get(user_id=response.json()["id"], kind="welcome")
    # The mail leaves inside the worker's transaction; the status commits just after.
    wait_until(lambda: OutboxEmail.objects.get(pk=welcome.pk).status == OutboxEmail.Status.SENT)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["newbie@example.com"] and message.subject == "Welcome to sidus"
    assert message.body.startswith("Hello,\n") and "Nina" not in message.body  # not the address's words yet
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and "<strong>sidus</strong>" in html
    welcome.refresh_from_db()
    assert welcome.sent_at is not None

    # The drain finds nothing left to send: no duplicate.
    assert tasks.drain_outbox.apply().get() == 0
    assert len(mail.outbox) == 1


def test_failed_registration_queues_nothing():
    before = broker_queue_length()
    assert register(email="not-an-email").status_code == 400
    with pytest.raises(RuntimeError), transaction.atomic():
        accounts.user_create(username="rolledback", email="rb@example.com", password=PASSWORD)
        raise RuntimeError("the surrounding transaction fails")

    assert not User.objects.exists() and not OutboxEmail.objects.exists()
    assert broker_queue_length() == before


def test_registration_publishes_only_after_commit():
    before = broker_queue_length()
    with transaction.atomic():
        accounts.user_create(username="later", email="later@example.com", password=PASSWORD)
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
    settings.EMAIL_OUTBOX_DRAIN_GRACE = 0
    user = User.objects.create_user("stranded", "stranded@example.com", PASSWORD)
    outboxed(user)  # as if the publish after commit had failed

    assert tasks.drain_outbox() == 1
    assert tasks.drain_outbox() == 0
    assert [m.to for m in mail.outbox] == [["stranded@example.com"]]


def test_drain_leaves_emails_pending_while_smtp_is_down(settings):
    from tests.servers import free_port

    settings.EMAIL_OUTBOX_DRAIN_GRACE = 0
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 1
    welcome = outboxed(User.objects.create_user("wait", "wait@example.com", PASSWORD))

    assert tasks.drain_outbox() == 0
    welcome.refresh_from_db()
    assert welcome.status == OutboxEmail.Status.PENDING


def test_deleted_user_gets_no_welcome_email():
    user = User.objects.create_user("quitter", "quitter@example.com", PASSWORD)
    welcome = outboxed(user)
    accounts.user_soft_delete(user=user)

    assert tasks.send_email(welcome.pk) is False
    welcome.refresh_from_db()
    assert welcome.status == OutboxEmail.Status.SKIPPED and mail.outbox == []


def test_a_refused_address_fails_alone_and_does_not_block_the_outbox(settings, caplog):
    settings.EMAIL_OUTBOX_DRAIN_GRACE = 0
    with SMTPServer(unknown=("nobody@example.com",)) as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        bad = outboxed(User.objects.create_user("nobody", "nobody@example.com", PASSWORD))
        good = outboxed(User.objects.create_user("somebody", "somebody@example.com", PASSWORD))

        assert tasks.drain_outbox() == 1
        assert tasks.drain_outbox() == 0
    bad.refresh_from_db()
    good.refresh_from_db()
    assert (bad.status, good.status) == (OutboxEmail.Status.FAILED, OutboxEmail.Status.SENT)
    assert len(smtp.inbox.to("somebody@example.com")) == 1
    # Our logs name no address; the SMTP server the test runs (aiosmtpd, logger "mail.log") may.
    assert not [r for r in caplog.records if r.name != "mail.log" and "nobody@example.com" in r.getMessage()]
