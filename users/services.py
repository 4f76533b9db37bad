"""The rules of changing a user. Views, the admin and tasks call these; nothing else writes users."""
import contextlib
import ipaddress
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from user_agents import parse

from users import cache, events, queries
from users.authentication import password_fingerprint
from users.loop_db import loop_db
from users.models import EmailChange, OutboxEmail, PendingSignup, Session, User, UserEvent, fold
from users.outbox import email_queue
from users.sessions import ended_sessions, seen_since, session_key

logger = logging.getLogger(__name__)

# Database constraints behind the serializers' checks: a concurrent writer can still trip them.
_CONSTRAINT_FIELDS = {
    "user_username_folded_unique": "username",
    "user_username_key": "username",
    "user_email_folded_unique": "email",
}

# The address is not among them: it changes with the password and the new address's consent
# (`email_change_request`), never with a token alone.
UPDATABLE_FIELDS = frozenset({"username", "first_name", "last_name", "bio"})
# What no other row, no email and no constraint depends on: `profile_update_async` writes these.
TEXT_FIELDS = frozenset({"first_name", "last_name", "bio"})


def _raise_for_integrity_error(exc: IntegrityError) -> None:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    field = _CONSTRAINT_FIELDS.get(constraint or "")
    if field is None:
        raise exc
    raise ValidationError({field: [f"A user with that {field} already exists."]}, code="unique") from exc


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
        _raise_for_integrity_error(exc)
    return user


# --- Signup that tells nobody who has an account (SIGNUP_PREVENT_ENUMERATION) -----------------


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


def user_update(
    *, user: User, data: dict[str, Any], precondition: Callable[[User], None] | None = None
) -> User:
    """Write only the changed columns, so a concurrent soft delete is never undone.

    A new email address is unverified: a link goes to it, and a notice to the old one.

    With a `precondition` (If-Match), the row is locked and re-read first and the check runs on
    it: nobody can write between the check and this write. It raises to refuse.
    """
    unknown = set(data) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    try:
        with transaction.atomic():
            if precondition is not None:
                user = User.objects.select_for_update().get(pk=user.pk)
                precondition(user)
            if not data:
                return user
            _write(user, data)
    except IntegrityError as exc:
        _raise_for_integrity_error(exc)
    return user


def _write(user: User, data: dict[str, Any]) -> None:
    """Set and save `data`'s columns alone. A new address is unverified (unless `data` says
    otherwise): a link goes to it, and a notice to the old one."""
    old_email = user.email
    for field, value in data.items():
        setattr(user, field, value)
    fields = [*data, "updated_at"]
    if "email" in data and user.email != old_email:
        if "email_verified" not in data:
            user.email_verified = False
            fields.append("email_verified")
        if not user.email_verified:
            email_queue(user=user, kind=OutboxEmail.Kind.VERIFY_EMAIL)
        email_queue(user=user, kind=OutboxEmail.Kind.EMAIL_CHANGED, to=old_email)
    user.save(update_fields=fields)


def user_change_by_staff(*, user_id: int, data: dict[str, Any]) -> User:
    """What staff changed in the admin's form, as staff's: the row locked and only `data`'s
    columns written (a concurrent soft delete is not undone), each event "by staff" in the
    user's log, a new address handled as `user_update` handles it, and a user made inactive
    loses every session, as a soft delete ends them."""
    try:
        with transaction.atomic(), events.by_staff():
            user = User.objects.select_for_update().get(pk=user_id)
            if data:
                _write(user, data)
            if "is_active" in data and not user.is_active:
                sessions_end(user=user, reason=Session.EndReason.STAFF)
    except IntegrityError as exc:
        _raise_for_integrity_error(exc)
    return user


async def profile_update_async(*, user: User, data: dict[str, str], secure: bool = False) -> User | None:
    """`user_update` of the text fields alone, on the event loop: the edge's lean PATCH.

    One transaction, only while the row is alive, active and still has the password and session
    epoch `user` was read with, which the caller checked the token against: a password change or
    a soft delete (and restore) committed since wins, and the answer is None (the caller lets
    Django answer). It records its event as `User.save()` does (the same SQL), and fires no signal,
    so the change is invalidated here, and the new public answer for the request's scheme
    (`secure`) is kept in L2 at once: every worker's next read of the profile is a Redis hit.
    """
    if not data or not set(data) <= TEXT_FIELDS:
        raise ValueError(f"not a text field update: {sorted(data)}")
    fields = tuple(data)
    generation = await cache.read_generation(user.pk)  # before the write: see invalidate_users_async
    where = ("password", "session_epoch")
    update = queries.update_where(fields, where=where, returning=queries.PRIVATE_ROW)
    async with loop_db.connection() as connection, connection.transaction():
        before = await (await connection.execute(
            events.locked_state_sql(fields, where, may_log_in=True), [user.pk, user.password, user.session_epoch]
        )).fetchone()
        if before is None:
            return None
        params = [*data.values(), timezone.now(), user.pk, user.password, user.session_epoch]
        row = await (await connection.execute(update, params)).fetchone()
        updated = queries.user_from_row(queries.PRIVATE_ROW, row)
        for type, changed in events.changes(dict(zip(fields, before)), updated, fields):
            await connection.execute(events.RECORD, events.record_params(updated, type, changed))
    fresh = {user.pk: (cache.loader.render(updated, secure), generation)}
    await cache.invalidate_users_async([user.pk], fresh=fresh)
    return updated


def user_soft_delete(*, user: User, ended_by: str | None = None) -> User:
    """Keep the row (and its username and email taken); the user can no longer log in or be seen,
    and every session begun before ends for good: a restore brings back the account, not them."""
    if user.deleted_at is None:
        user.deleted_at = timezone.now()
    user.is_active = False
    user.session_epoch += 1
    staff = ended_by == Session.EndReason.STAFF
    with transaction.atomic(), events.by_staff() if staff else contextlib.nullcontext():
        user.save(update_fields=["deleted_at", "is_active", "session_epoch", "updated_at"])
        sessions_end(user=user, reason=ended_by or Session.EndReason.ACCOUNT_DELETED)
    return user


def user_restore(*, user: User) -> User:
    """Staff's (the admin's action): the user's log says so."""
    user.deleted_at = None
    user.is_active = True
    with transaction.atomic(), events.by_staff():
        user.save(update_fields=["deleted_at", "is_active", "updated_at"])
    return user


def users_soft_delete(*, user_ids: Iterable[int]) -> int:
    """Bulk soft delete (admin action): each user as `user_soft_delete` by staff, in one transaction."""
    with transaction.atomic():
        users = User.objects.select_for_update().filter(pk__in=list(user_ids), deleted_at__isnull=True)
        return sum(1 for user in users if user_soft_delete(user=user, ended_by=Session.EndReason.STAFF))


def users_restore(*, user_ids: Iterable[int]) -> int:
    with transaction.atomic():
        users = User.objects.select_for_update().filter(pk__in=list(user_ids), deleted_at__isnull=False)
        return sum(1 for user in users if user_restore(user=user))


# --- Passwords and email verification --------------------------------------------------------


def password_change(*, user: User, new_password: str | None,
                    reason: str = Session.EndReason.PASSWORD_CHANGE) -> User:
    """Every token issued before stops working (they carry the old password's fingerprint), and
    every session of the user ends (the caller of a change gets a new one), for `reason`: the
    user's change, a reset link, or staff (the admin's password form, which may also set no
    usable password: `new_password` None). The owner's mailbox hears of it."""
    staff = reason == Session.EndReason.STAFF
    with transaction.atomic(), events.by_staff() if staff else contextlib.nullcontext():
        if new_password is None:
            user.set_unusable_password()
        else:
            user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        sessions_end(user=user, reason=reason)
        email_queue(user=user, kind=OutboxEmail.Kind.PASSWORD_CHANGED)
    return user


def password_reset_ask(*, email: str) -> None:
    """Hand a reset request to a worker, so that answering it costs the same whether or not the
    address belongs to someone. With the broker away it is looked up here instead (the outbox
    drain sends the email later), and the answer is a little slower when it does."""
    try:  # by its name: the task's module imports this one
        current_app.send_task("users.tasks.request_password_reset", args=(email,), retry=False)
    except Exception as exc:  # kombu raises OperationalError, or OSError, or a timeout
        logger.warning("Broker unavailable, password reset looked up in the request: %r", exc)
        password_reset_request(email=email)


def password_reset_request(*, email: str) -> None:
    """Email a reset link if an alive, active user has this address; silent otherwise."""
    user = User.objects.alive().filter(is_active=True).named("email", email).first()
    if user is not None:
        password_reset_send(user=user)


def password_reset_send(*, user: User) -> None:
    """Queue a reset link (API and admin); the link is made when the email goes out."""
    with transaction.atomic():
        email_queue(user=user, kind=OutboxEmail.Kind.PASSWORD_RESET)


def email_verify(*, user: User) -> User:
    with transaction.atomic():
        user.email_verified = True
        user.save(update_fields=["email_verified", "updated_at"])
    return user


def email_verification_resend(*, user: User) -> bool:
    """Queue a new verification link; False (nothing sent) when the address is verified already."""
    if user.email_verified:
        return False
    with transaction.atomic():
        email_queue(user=user, kind=OutboxEmail.Kind.VERIFY_EMAIL)
    return True


# --- A new address: asked with the password, made by the new address, undone by the old ------------


class LinkNotValid(Exception):
    """An emailed link that can no longer do what it says: used, superseded, expired or refused."""


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
        raise ValidationError({"new_email": ["A user with that email already exists."]}, code="unique")
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
        _raise_for_integrity_error(exc)
    return user


def email_change_revert(*, change: EmailChange) -> User:
    """The old address's link, once the change is made: the old address is the account's again,
    verified, whatever happened since (a new password, another address), and the account is
    secured (`_secure`). Works once; 409 if someone took the old address meanwhile."""
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
            _secure(user)
    except IntegrityError as exc:
        _raise_for_integrity_error(exc)
    return user


def account_secure(*, user_id: int, session_epoch: int) -> User:
    """A login alert's link: every session of the account ends, once (the link names the session
    epoch it was made in), and a reset link goes to the account's address."""
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id, session_epoch=session_epoch).first()
        if user is None:
            raise LinkNotValid()
        events.record(user, UserEvent.Type.ACCOUNT_SECURED)
        _secure(user)
    return user


def _secure(user: User) -> None:
    """Whoever held the account is out: every token and admin login answers 401 at once (the
    session epoch moves on), every session ends, and the address gets a reset link."""
    user.session_epoch += 1
    user.save(update_fields=["session_epoch", "updated_at"])
    sessions_end(user=user, reason=Session.EndReason.ACCOUNT_SECURED)
    email_queue(kind=OutboxEmail.Kind.ACCOUNT_SECURED, user=user)


def email_changes_cancel(*, user_ids: Iterable[int]) -> int:
    """Staff's (the admin's action): pending changes of address are dropped, their links dead."""
    return EmailChange.objects.pending().filter(user_id__in=list(user_ids)).update(cancelled_at=timezone.now())


def events_release(*, event_ids: Iterable[Any]) -> int:
    """Parked events tried again by the relay (from the admin): their attempts start over."""
    return UserEvent.objects.filter(pk__in=list(event_ids), published_at__isnull=True, parked_at__isnull=False).update(
        parked_at=None, attempts=0, available_at=None, last_error=""
    )


# --- Sessions ------------------------------------------------------------------------------------


class SessionNotLive(Exception):
    """The session has ended (or is not one of ours): its tokens answer 401."""


class RefreshTokenReused(Exception):
    """A refresh token that was used up already: its session has just been ended for it."""


def session_start(*, user: User, refresh_jti: str, ip: str | None = None, user_agent: str = "",
                  login: bool = False) -> Session:
    """A new session: its id is the `sid` of the tokens issued for it, and `refresh_jti` its first
    refresh token. A `login` from a device and network this account has not logged in from in
    LOGIN_ALERT_WINDOW emails its owner, with a link that ends every session (not the first one)."""
    user_agent = user_agent[:Session._meta.get_field("user_agent").max_length]
    device, network = device_label(user_agent), network_of(ip)
    with transaction.atomic():
        session = Session.objects.create(
            id=uuid.uuid4(), user=user, ip=ip, user_agent=user_agent, device=device, refresh_jti=refresh_jti,
        )
        context = {"ip": ip, "device": device, "network": network}
        alert = login and settings.LOGIN_ALERTS and _new_to(user, device, network)
        events.record(user, UserEvent.Type.LOGGED_IN, extra={"session": str(session.pk)}, context=context)
        if alert:
            email_queue(kind=OutboxEmail.Kind.LOGIN_ALERT, user=user, context={
                "time": session.created_at.isoformat(), "device": device, "network": network})
            events.record(user, UserEvent.Type.LOGIN_ALERT_SENT, extra={"session": str(session.pk)}, context=context)
    return session


LOGIN_ALERT_WINDOW = timedelta(days=90)


def _new_to(user: User, device: str, network: str | None) -> bool:
    """No login of `user` from this device label and network within LOGIN_ALERT_WINDOW, though
    there was a login before (the first one after signup is no news)."""
    logins = UserEvent.objects.filter(user=user, type=UserEvent.Type.LOGGED_IN)
    if not logins.exists():
        return False
    recent = logins.filter(time__gte=timezone.now() - LOGIN_ALERT_WINDOW)
    return not recent.filter(context__device=device, context__network=network).exists()


def network_of(ip: str | None) -> str | None:
    """The network a person's address moves within: its /24 (IPv4) or /64 (IPv6)."""
    if not ip:
        return None
    address = ipaddress.ip_address(ip)
    return str(ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 64}", strict=False))


def login_failed(*, username: Any, ip: str | None, user_agent: str) -> None:
    """A failed login on an account that exists is in its owner's security log (no other trace:
    the answer and its timing are the same for every username)."""
    if not isinstance(username, str):
        return
    user = User.objects.alive().named("username", username).first()
    if user is not None:
        with transaction.atomic():
            events.record(user, UserEvent.Type.LOGIN_FAILED, context={"ip": ip, "device": device_label(user_agent)})


def device_label(user_agent: str) -> str:
    """"Firefox on Linux", "Mobile Safari on iOS", "curl": what a person recognises in a list."""
    if not user_agent:
        return ""
    agent = parse(user_agent)
    browser, system = agent.browser.family, agent.os.family
    label = browser if system == "Other" else system if browser == "Other" else f"{browser} on {system}"
    return "" if label == "Other" else label[:Session._meta.get_field("device").max_length]


def sessions_live(*, user: User) -> Any:
    """The sessions of `user` that can still act: not ended, refreshed within REFRESH_TOKEN_LIFETIME."""
    return Session.objects.filter(user=user, ended_at__isnull=True, last_seen_at__gte=seen_since())


def session_refresh(*, session_id: Any, refresh_jti: str, new_refresh_jti: str) -> None:
    """Use up the session's refresh token `refresh_jti`, `new_refresh_jti` taking its place: once,
    whatever the concurrency, on any worker (`_with_refresh_token`)."""

    def rotate(session: Session) -> None:
        session.refresh_jti, session.last_seen_at = new_refresh_jti, timezone.now()
        session.save(update_fields=["refresh_jti", "last_seen_at"])

    _with_refresh_token(session_id, refresh_jti, rotate)


def session_logout(*, session_id: Any, refresh_jti: str) -> None:
    """Logout with the session's refresh token: the session ends (`_with_refresh_token`)."""
    _with_refresh_token(session_id, refresh_jti,
                        lambda session: _end(Session.objects.filter(pk=session.pk), Session.EndReason.LOGOUT))


def _with_refresh_token(session_id: Any, refresh_jti: str, use: Callable[[Session], None]) -> None:
    """`use` the live session whose refresh token is `refresh_jti`, under its row's lock.

    Any other refresh token of a live session was used up before: whoever presents it holds a
    copy, so the session ends for everyone (the OAuth 2.0 Security BCP's reuse detection), and
    that is in its user's security log. No grace for a retry: a second use of one token cannot
    be told from a thief's, and any answer to it would hand out a working pair.
    Raises SessionNotLive, or RefreshTokenReused once the session's end has committed.
    """
    key = session_key(session_id)
    with transaction.atomic():
        session = Session.objects.select_for_update().filter(pk=key, ended_at__isnull=True).first() if key else None
        if session is None:
            raise SessionNotLive()
        reused = session.refresh_jti not in ("", refresh_jti)
        if reused:
            _end(Session.objects.filter(pk=session.pk), Session.EndReason.REFRESH_REUSED)
        else:
            use(session)
    if reused:
        raise RefreshTokenReused()


def session_end(*, user_id: Any, session_id: Any, reason: str) -> bool:
    """End one session of `user_id` (a logout, or the user ending it from elsewhere). False if it
    was not live."""
    return _end(Session.objects.filter(pk=session_id, user_id=user_id), reason) == 1


def sessions_end(*, user: User, reason: str, keep: Any = None) -> int:
    """End every live session of `user`, but `keep` (the caller's own); how many ended."""
    sessions = Session.objects.filter(user=user)
    if keep is not None:
        sessions = sessions.exclude(pk=keep)
    return _end(sessions, reason)


def _end(sessions: Any, reason: str) -> int:
    """Their tokens answer 401 at once on this worker (its copy is told after the commit), and on
    every other within USER_CACHE_MAX_STALENESS (each reads what ended: users/sessions.py). Each
    ending is an event of its user: `user.logged_out`, else `user.session_ended` with the reason."""
    now = timezone.now()
    with transaction.atomic():
        live = list(sessions.filter(ended_at__isnull=True).select_related("user").select_for_update(of=("self",)))
        if not live:
            return 0
        ids = [session.pk for session in live]
        Session.objects.filter(pk__in=ids).update(ended_at=now, end_reason=reason)
        for session in live:
            context = {"ip": session.ip, "device": session.device}
            if reason == Session.EndReason.LOGOUT:
                events.record(session.user, UserEvent.Type.LOGGED_OUT, extra={"session": str(session.pk)},
                              context=context)
            else:
                events.record(session.user, UserEvent.Type.SESSION_ENDED,
                              extra={"session": str(session.pk), "reason": reason},
                              context={**context, **events.BY_STAFF} if reason == Session.EndReason.STAFF else context)
        transaction.on_commit(lambda: ended_sessions.note(ids, now))
    return len(live)


def sessions_prune() -> int:
    """Delete the sessions with no refresh for REFRESH_TOKEN_LIFETIME: none of their tokens is
    valid any more (the Celery worker runs this on a timer)."""
    return Session.objects.filter(last_seen_at__lt=seen_since()).delete()[0]
