"""A new address: asked with the password, made by the new address's link, undone by the old one's."""
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from users import events
from users.accounts.errors import LinkNotValid, NameTaken, raise_for_integrity_error
from users.accounts.lifecycle import user_secure
from users.mail.outbox import email_queue
from users.models import EmailChange, OutboxEmail, User, UserEvent, fold, password_fingerprint


def email_change_request(*, user: User, new_email: str) -> None:
    """The caller proved the password; `new_email` is not the account's. Nothing changes yet: the
    new address gets the link that makes the change (`email_change_confirm`), the current one a
    notice, and the log an `email_change_requested`. An earlier request's link stops working.

    An address that has an account, or that another account left and may take back (its revert
    link is live), is a 409 naming `new_email`, as signup's; under SIGNUP_PREVENT_ENUMERATION the
    same work and answer as a free one, and its owner a notice.
    """
    owner = User.objects.named("email", new_email).exclude(pk=user.pk).first()
    reserved = EmailChange.objects.reserving(new_email).exclude(user=user).exists()
    if (owner is not None or reserved) and not settings.SIGNUP_PREVENT_ENUMERATION:
        raise NameTaken("new_email", "email")
    now = timezone.now()
    with transaction.atomic():
        EmailChange.objects.pending().filter(user=user).update(cancelled_at=now)
        change = EmailChange.objects.create(user=user, old_email=user.email, new_email=new_email, created_at=now,
                                            password_fingerprint=password_fingerprint(user))
        if owner is None and not reserved:
            email_queue(kind=OutboxEmail.Kind.EMAIL_CHANGE_CONFIRM, user=user, to=new_email,
                        context={"change": change.pk})
        else:  # the change can never be confirmed: no link goes anywhere
            change.cancelled_at = now
            change.save(update_fields=["cancelled_at"])
            if owner is not None:
                email_queue(kind=OutboxEmail.Kind.EMAIL_CHANGE_TAKEN, user=owner)
        email_queue(kind=OutboxEmail.Kind.EMAIL_CHANGE_REQUESTED, user=user, context={"new_email": new_email})
        events.record(user, UserEvent.Type.EMAIL_CHANGE_REQUESTED)


def email_change_confirm(*, change: EmailChange) -> User:
    """The new address's link: it becomes the account's, verified (`user.email_changed`), and the
    old one gets the link that puts it back. Only the user's latest request, while the password
    and the address are those it was asked with; 409 if the address was taken since."""
    try:
        with transaction.atomic():
            change = EmailChange.objects.select_for_update().get(pk=change.pk)
            user = User.objects.select_for_update().get(pk=change.user_id)
            latest = EmailChange.objects.filter(user=user).latest("created_at", "pk")
            if (not change.pending or latest.pk != change.pk or fold(user.email) != fold(change.old_email)
                    or password_fingerprint(user) != change.password_fingerprint or user.deleted_at is not None
                    or not user.is_active):
                raise LinkNotValid()
            change.confirmed_at = timezone.now()
            change.save(update_fields=["confirmed_at"])
            user.email, user.email_verified = change.new_email, True
            user.save(update_fields=["email", "email_verified", "updated_at"])
            email_queue(kind=OutboxEmail.Kind.EMAIL_CHANGED, user=user, to=change.old_email,
                        context={"change": change.pk})
    except IntegrityError as exc:
        raise_for_integrity_error(exc)
    return user


def email_change_revert(*, change: EmailChange) -> User:
    """The old address's link, once the change is made: the old address is the account's again,
    verified, whatever happened since (a new password, another address), and the account is
    secured (`user_secure`). Works once; 409 if someone took the old address meanwhile."""
    try:
        with transaction.atomic():
            change = EmailChange.objects.select_for_update().get(pk=change.pk)
            if change.confirmed_at is None or change.reverted_at is not None:
                raise LinkNotValid()
            user = User.objects.select_for_update().get(pk=change.user_id)
            now = timezone.now()
            change.reverted_at = now
            change.save(update_fields=["reverted_at"])
            EmailChange.objects.pending().filter(user=user).update(cancelled_at=now)
            user.email, user.email_verified = change.old_email, True
            user.save(update_fields=["email", "email_verified", "updated_at"])
            events.record(user, UserEvent.Type.EMAIL_CHANGE_REVERTED)
            user_secure(user, since=change.created_at)
    except IntegrityError as exc:
        raise_for_integrity_error(exc)
    return user


def email_changes_cancel(*, user_ids: Iterable[int]) -> int:
    """Staff's (the admin's action): pending changes of address are dropped, their links dead."""
    return EmailChange.objects.pending().filter(user_id__in=list(user_ids)).update(cancelled_at=timezone.now())
