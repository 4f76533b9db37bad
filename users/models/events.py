"""The user events: written in each change's transaction, published by the relay, and those a
consumer handled."""
import uuid

from django.db import models

from users.models.user import User


class UserEvent(models.Model):
    """One change to a user, written in the change's transaction (the transactional outbox), and
    published to the broker by the relay (users/events/relay.py) once committed, in `sequence`
    order per user. The row is the event: `id` and `data` are what every delivery carries."""

    class Type(models.TextChoices):
        REGISTERED = "user.registered"
        UPDATED = "user.updated"
        EMAIL_CHANGED = "user.email_changed"
        EMAIL_VERIFIED = "user.email_verified"
        PASSWORD_CHANGED = "user.password_changed"
        DELETED = "user.deleted"
        RESTORED = "user.restored"
        LOGGED_IN = "user.logged_in"
        LOGIN_FAILED = "user.login_failed"
        LOGGED_OUT = "user.logged_out"
        SESSION_ENDED = "user.session_ended"
        EMAIL_CHANGE_REQUESTED = "user.email_change_requested"
        EMAIL_CHANGE_REVERTED = "user.email_change_reverted"
        LOGIN_ALERT_SENT = "user.login_alert_sent"
        ACCOUNT_SECURED = "user.account_secured"
        MFA_ENABLED = "user.mfa_enabled"
        MFA_DISABLED = "user.mfa_disabled"
        RECOVERY_CODES_GENERATED = "user.recovery_codes_generated"
        RECOVERY_CODE_USED = "user.recovery_code_used"
        PASSKEY_ADDED = "user.passkey_added"
        PASSKEY_REMOVED = "user.passkey_removed"
        MFA_FAILED = "user.mfa_failed"

    class Actor(models.TextChoices):
        USER = "user"
        STAFF = "staff"
        SYSTEM = "system"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database constraint: a user's events outlive the row, should anyone remove it.
    user = models.ForeignKey(User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="events")
    sequence = models.PositiveBigIntegerField()
    type = models.CharField(max_length=255, choices=Type.choices)
    time = models.DateTimeField()
    data = models.JSONField()
    # Who caused it (the CloudEvent's `actor`): the user's client (the API, the pages), staff (the
    # admin) or sidus itself (tasks, commands); never which staff member.
    actor = models.CharField(max_length=6, choices=Actor.choices, default=Actor.SYSTEM, db_default=Actor.SYSTEM)
    # What only the user sees, in their security log (the client's IP and device, "by staff"):
    # never published, never in `data`.
    context = models.JSONField(default=dict, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(null=True, blank=True)  # not tried again before (after a failure)
    last_error = models.TextField(blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)  # refused too often: waits for staff

    class Meta:
        db_table = "user_event"
        ordering = ["user", "sequence"]
        constraints = [models.UniqueConstraint(fields=["user", "sequence"], name="user_event_sequence_unique")]
        indexes = [
            models.Index(fields=["user", "sequence"], name="user_event_unpublished_idx",
                         condition=models.Q(published_at__isnull=True)),
            models.Index(fields=["time"], name="user_event_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.sequence} of user {self.user_id}"


class ConsumedEvent(models.Model):
    """An event `manage.py consume_events` handled, per queue: a redelivery of it is skipped."""

    queue = models.CharField(max_length=255)
    event_id = models.UUIDField()
    handled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "consumed_event"
        constraints = [models.UniqueConstraint(fields=["queue", "event_id"], name="consumed_event_unique")]
