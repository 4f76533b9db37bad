"""The emails to send, each written in the transaction of the change that calls for it."""

from django.db import models

from users.models.accounts import PendingSignup
from users.models.user import User


class OutboxEmail(models.Model):
    """One email to send, written in the same transaction as the change that calls for it.

    It outlives a broker outage: whatever the publish after commit did, the worker's periodic
    drain sends every pending row, and the row lock plus `status` send each email once. `to` is
    the address when the row was written: a link meant for one address never goes to another.
    """

    class Kind(models.TextChoices):
        WELCOME = "welcome"  # with the link that verifies the address
        VERIFY_EMAIL = "verify_email"
        PASSWORD_RESET = "password_reset"
        PASSWORD_CHANGED = "password_changed"
        EMAIL_CHANGED = "email_changed"  # to the old address
        SIGNUP_CONFIRM = "signup_confirm"  # with the link that creates a pending signup's account
        SIGNUP_EXISTS = "signup_exists"  # to the owner of an address someone tried to sign up with
        EMAIL_CHANGE_CONFIRM = "email_change_confirm"  # to the new address, with the link that makes it the account's
        EMAIL_CHANGE_REQUESTED = "email_change_requested"  # to the current address: a change was asked for
        EMAIL_CHANGE_TAKEN = "email_change_taken"  # to the owner of an address someone asked to move to
        LOGIN_ALERT = "login_alert"  # a login from a new device and network, with the secure-account link
        ACCOUNT_SECURED = "account_secured"  # after a revert or a secure-account link: a reset link
        FACTOR_ADDED = "factor_added"  # a second factor, with the secure-account link that removes it

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        # No longer wanted (the user was deleted, the address changed), or past the address's share
        # of unsolicited emails (RATE_LIMIT_EMAIL_TO_ADDRESS).
        SKIPPED = "skipped"
        FAILED = "failed"  # the mail server refused the address for good

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="emails", null=True, blank=True)
    # Set instead of `user` for SIGNUP_CONFIRM; cleared when the signup is used or expires.
    signup = models.ForeignKey(PendingSignup, on_delete=models.SET_NULL, related_name="emails", null=True, blank=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    to = models.EmailField()
    # What the email is about, for the kinds that need more than the user: {"change": id} of an
    # EmailChange, the login of an alert ({"time", "device", "network"}).
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="outbox_pending_idx", condition=models.Q(status="pending"))
        ]

    def __str__(self) -> str:
        whom = f"user {self.user_id}" if self.user_id else "a pending signup"
        return f"{self.get_kind_display()} email to {whom} ({self.status})"
