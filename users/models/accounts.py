"""What an account goes through besides its row: a signup waiting for its link, a change of
address waiting for the new one's, and its sessions."""
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from users.models.user import User, fold


class PendingSignup(models.Model):
    """A registration waiting for its address to be confirmed, under SIGNUP_PREVENT_ENUMERATION.

    Nothing of it shows (no user, no profile, no taken username) until the link sent to the
    address is used: signing up with someone else's address tells the caller nothing, and a
    signup whose address was taken leaves no row at all.
    """

    username = models.CharField(max_length=150)
    email = models.EmailField()
    password = models.CharField(max_length=128)  # the hash, as User keeps it
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    bio = models.TextField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"pending signup {self.pk}"


class EmailChangeQuerySet(models.QuerySet):
    def pending(self) -> "EmailChangeQuerySet":
        """Neither confirmed nor cancelled: their confirm links may still work."""
        return self.filter(confirmed_at__isnull=True, cancelled_at__isnull=True)

    def reserving(self, email: str) -> "EmailChangeQuerySet":
        """The changes whose old address is `email` (in any spelling that folds alike) and may still
        come back (`accounts.email_change_revert`): for that long no other account may take it."""
        since = timezone.now() - timedelta(days=settings.EMAIL_CHANGE_REVERT_DAYS)
        return self.filter(old_email_folded=fold(email), confirmed_at__gte=since, reverted_at__isnull=True)


class EmailChange(models.Model):
    """A request to move an account to a new address (`accounts.email_change_request`).

    Nothing changes until the link sent to `new_email` is followed (`confirmed_at`); only the
    user's latest request can be, within EMAIL_CHANGE_TIMEOUT, and only while the password is the
    one it was asked with (`password_fingerprint`, never the hash) and the address still
    `old_email`. Once confirmed, the link sent to `old_email` puts it back (`reverted_at`) for
    EMAIL_CHANGE_REVERT_DAYS, whatever happened since. The links are signed ids of this row: no
    token is stored, and each works once because using it changes the row.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_changes")
    old_email = models.EmailField()
    old_email_folded = models.TextField(editable=False)  # fold(old_email), kept by save()
    new_email = models.EmailField()
    password_fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)  # a newer request, or staff
    reverted_at = models.DateTimeField(null=True, blank=True)

    objects = EmailChangeQuerySet.as_manager()

    class Meta:
        db_table = "user_email_change"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="user_email_change_latest_idx"),
            models.Index(fields=["old_email_folded"], name="user_email_change_old_idx",
                         condition=models.Q(reverted_at__isnull=True, confirmed_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"email change {self.pk} of user {self.user_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.old_email_folded = fold(self.old_email)
        super().save(*args, **kwargs)

    @property
    def pending(self) -> bool:
        return self.confirmed_at is None and self.cancelled_at is None


class Session(models.Model):
    """One login: the `sid` every token of it carries, kept across refreshes. A session ends once
    (`ended_at`, and why); its tokens answer 401 from then on, on every worker within
    USER_CACHE_MAX_STALENESS (users/accounts/ended.py).
    `refresh_jti` names its one refresh token that may still be used: a refresh swaps it under the
    row's lock, and presenting any other of the session's refresh tokens ends the session.
    Expired ones (no refresh for REFRESH_TOKEN_LIFETIME) are pruned by the Celery worker."""

    class EndReason(models.TextChoices):
        LOGOUT = "logout", _("logged out")
        REVOKED = "revoked", _("ended by the user")
        PASSWORD_CHANGE = "password_change", _("password changed")
        PASSWORD_RESET = "password_reset", _("password reset")
        ACCOUNT_DELETED = "account_deleted", _("account deleted")
        STAFF = "staff", _("ended by staff")
        REFRESH_REUSED = "refresh_reused", _("a used-up refresh token was presented")
        ACCOUNT_SECURED = "account_secured", _("the owner secured the account from their mailbox")

    id = models.UUIDField(primary_key=True, editable=False)  # the tokens' `sid`
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)  # the login, then each refresh
    ip = models.GenericIPAddressField(null=True, blank=True)  # as the rate limits see it (IPv6: its /64)
    user_agent = models.CharField(max_length=512, blank=True)
    device = models.CharField(max_length=100, blank=True)  # a label derived from the User-Agent
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    # The jti of the session's live refresh token; blank for a session begun before it was kept,
    # whose next refresh sets it.
    refresh_jti = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        db_table = "user_session"
        indexes = [
            # A user's live sessions, newest activity first (the API's list, the admin's counts).
            models.Index(F("user"), F("last_seen_at").desc(), name="user_session_live_idx",
                         condition=models.Q(ended_at__isnull=True)),
            # What each worker reads of the sessions ended lately (users/accounts/ended.py).
            models.Index(fields=["ended_at"], name="user_session_ended_idx",
                         condition=models.Q(ended_at__isnull=False)),
            models.Index(fields=["last_seen_at"], name="user_session_seen_idx"),  # the pruning
        ]

    def __str__(self) -> str:
        return f"session {self.pk} of user {self.user_id}"
