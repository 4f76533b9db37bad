"""Sessions: started at login, their refresh tokens used up once, ended one by one or all at once,
and the failed logins of an account."""
import ipaddress
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from user_agents import parse

from users import events
from users.accounts.ended import seen_since, session_key
from users.accounts.errors import RefreshTokenReused, SessionNotLive
from users.mail.outbox import email_queue
from users.models import OutboxEmail, Session, User, UserEvent
from users.runtime import current


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
    every other within USER_CACHE_MAX_STALENESS (each reads what ended: users/accounts/ended.py). Each
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
        transaction.on_commit(lambda: current().ended_sessions.note(ids, now))
    return len(live)


def sessions_prune() -> int:
    """Delete the sessions with no refresh for REFRESH_TOKEN_LIFETIME: none of their tokens is
    valid any more (the Celery worker runs this on a timer)."""
    return Session.objects.filter(last_seen_at__lt=seen_since()).delete()[0]
