"""Signing up: an account made at once, or (SIGNUP_PREVENT_ENUMERATION) once the address's link is
used, telling nobody who has an account."""
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone

from users.accounts.errors import raise_for_integrity_error
from users.mail.outbox import email_queue
from users.models import EmailChange, OutboxEmail, PendingSignup, User


def user_create(
    *,
    username: str,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    bio: str = "",
) -> User:
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, bio=bio)
    user.set_password(password)
    return _user_insert(user)


def _user_insert(user: User, *, signup: PendingSignup | None = None) -> User:
    """Save a new user with its welcome email (and use up the signup it comes from); 409 if taken."""
    try:
        with transaction.atomic():
            user.save()
            if signup is not None:
                signup.delete()
            email_queue(user=user, kind=OutboxEmail.Kind.WELCOME)
    except IntegrityError as exc:
        raise_for_integrity_error(exc)
    return user


def signup_request(
    *,
    username: str,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    bio: str = "",
) -> None:
    """Register without saying whether the address has an account: the same work either way (one
    password hash, one lookup, one email queued). A new address gets a link that creates the
    account (`signup_confirm`); the owner of a taken one, a notice. Nothing else shows."""
    signup = PendingSignup(username=username, email=email, password=make_password(password), first_name=first_name,
                           last_name=last_name, bio=bio)
    owner = User.objects.named("email", email).first()
    with transaction.atomic():
        if owner is not None:
            email_queue(kind=OutboxEmail.Kind.SIGNUP_EXISTS, user=owner)
        elif not EmailChange.objects.reserving(email).exists():
            signup.save()
            email_queue(kind=OutboxEmail.Kind.SIGNUP_CONFIRM, signup=signup)
        # else the address may go back to the account that left it: nothing, and nobody to tell


def signup_confirm(*, signup: PendingSignup) -> User:
    """The account of a signup whose link was used: its address is verified by that. 409 if the
    username or the address was taken since."""
    user = User(username=signup.username, email=signup.email, password=signup.password, email_verified=True,
                first_name=signup.first_name, last_name=signup.last_name, bio=signup.bio)
    return _user_insert(user, signup=signup)


def signups_expire() -> int:
    """Forget pending signups whose links have expired."""
    cutoff = timezone.now() - timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
    return PendingSignup.objects.filter(created_at__lt=cutoff).delete()[0]
