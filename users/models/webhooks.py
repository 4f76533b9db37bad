"""The webhooks: the endpoints that take the user events over HTTP, and one delivery per endpoint and event."""
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now

from users.models.events import UserEvent


class WebhookEndpoint(models.Model):
    """A URL the user events of `event_types` (patterns such as `user.*`) are posted to, signed as
    Standard Webhooks says (users/webhooks/). The secret is kept encrypted; after a rotation the
    previous one signs beside it until `previous_secret_until`. An endpoint failing without a
    success for WEBHOOKS_DISABLE_AFTER is disabled (`disabled_reason` says so)."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    event_types = ArrayField(models.CharField(max_length=255), default=list)
    enabled = models.BooleanField(default=True)
    secret = models.TextField(editable=False)  # "whsec_...", encrypted
    previous_secret = models.TextField(blank=True, editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)  # the first failure since a success
    disabled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "webhook_endpoint"
        ordering = ["id"]

    def __str__(self) -> str:  # never the secret
        return self.url


class WebhookDelivery(models.Model):
    """One event for one endpoint. Written in the event's own transaction (`events.RECORD`), so a
    user's deliveries exist in the order of their events. Per endpoint and user only the first open
    one (pending or failed) is sent: a failed one holds its user's later events until it is sent
    again or dismissed; other users and endpoints go on."""

    class Status(models.TextChoices):
        PENDING = "pending"  # to send, at `next_attempt_at`
        DELIVERED = "delivered"  # answered 2xx
        FAILED = "failed"  # every retry spent: holds the user's later events for this endpoint
        DISMISSED = "dismissed"  # given up by staff: the later events go on

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    # No database constraint: like the events' own, deliveries outlive whatever removes rows.
    event = models.ForeignKey(UserEvent, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    user_id = models.BigIntegerField()
    sequence = models.PositiveBigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING,
                              db_default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(db_default=Now())
    next_attempt_at = models.DateTimeField(db_default=Now())
    leased_until = models.DateTimeField(null=True, blank=True)  # a sender has it in flight until then
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)  # the HTTP status of the last answer
    last_response = models.TextField(blank=True, db_default="")  # its first 1 KB
    last_error = models.TextField(blank=True, db_default="")  # why the last attempt failed
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_delivery"
        ordering = ["-created_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="webhook_delivery_unique")]
        indexes = [
            models.Index(fields=["endpoint", "user_id", "sequence"], name="webhook_delivery_open_idx",
                         condition=models.Q(status__in=["pending", "failed"])),
            models.Index(fields=["endpoint", "next_attempt_at"], name="webhook_delivery_due_idx",
                         condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} to {self.endpoint_id} ({self.status})"
