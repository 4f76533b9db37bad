"""My sessions and my security log, under /api/v1/auth/sessions/ and /api/v1/users/me/events/."""
import uuid
from typing import Any

from adrf.views import APIView
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from sidus.http.exception_handler import Conflict
from sidus.http.openapi import DETAIL_ERROR, RETRY_AFTER, api_responses
from sidus.http.pagination import CursorPagination
from users import accounts
from users.accounts.ended import session_key
from users.api import examples
from users.api.accounts import AccountView, proven
from users.api.serializers import FactorSerializer, SecurityEventSerializer, SessionSerializer
from users.auth.authentication import SESSION_CLAIM
from users.models import Session, UserEvent

CURRENT_SESSION = "This is the session of the request: log out to end it."


class SessionPagination(CursorPagination):
    ordering = ("-last_seen_at", "-id")
    page_size = 50


def _page_of(name: str, serializer: serializers.Serializer) -> serializers.Serializer:
    """The schema of a cursor page (`CursorPagination`'s answer) of `serializer`'s items."""
    return inline_serializer(name, {
        "next": serializers.URLField(allow_null=True, help_text="The next page, if there is one."),
        "previous": serializers.URLField(allow_null=True, help_text="The previous page, if there is one."),
        "results": serializer,
    })


def _paginated(view: APIView, pagination: type[CursorPagination], queryset: Any,
               serializer: type[serializers.Serializer], context: dict[str, Any] | None = None) -> Response:
    """One cursor page of `queryset` as `serializer` renders it (a bad cursor is a 404)."""
    paginator = pagination()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context=context or {}).data)


SESSION_PAGE = _page_of("SessionPage", SessionSerializer(many=True))
_CURSOR = [OpenApiParameter("cursor", str, description="A page's position, from `next` or `previous`.")]


class _SessionsView(AccountView):
    permission_classes = [IsAuthenticated]
    rate_limit = "sessions"

    def current_session(self) -> uuid.UUID | None:
        """The session of the request's token."""
        return session_key(self.request.auth.get(SESSION_CLAIM)) if self.request.auth is not None else None


@extend_schema_view(
    get=extend_schema(
        summary="My sessions", operation_id="auth_sessions_list",
        description="The sessions of my account that can still act (logged in, not ended, refreshed within "
                    "the refresh token's lifetime), the most recently active first; `current` marks this one.",
        parameters=[RETRY_AFTER, *_CURSOR],
        responses=api_responses({200: SESSION_PAGE}, 401, 429, own={404: (DETAIL_ERROR, "The cursor is not valid.")}),
    ),
    delete=extend_schema(
        summary="End my other sessions", operation_id="auth_sessions_end_others", request=FactorSerializer,
        description="Ends every session of my account but this one: their tokens answer 401 from now on. An "
                    "account with a second factor proves it (`code` or `credential`); one without sends no body.",
        parameters=[RETRY_AFTER], examples=[examples.END_SESSIONS],
        responses=api_responses({204: None}, 400, 401, 413, 415, 429),
    ),
)
class SessionListView(_SessionsView):
    def get(self, request: Request) -> Response:
        return _paginated(self, SessionPagination, accounts.sessions_live(user=request.user), SessionSerializer,
                          {"session_id": self.current_session()})

    def delete(self, request: Request) -> Response:
        proven(request, FactorSerializer)
        accounts.sessions_end(user=request.user, reason=Session.EndReason.REVOKED, keep=self.current_session())
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionDetailView(_SessionsView):
    @extend_schema(
        summary="End one of my sessions", operation_id="auth_session_end", request=None,
        description="Its refresh token answers 401 from now on, its access tokens on this worker at once and on "
                    "every other within USER_CACHE_MAX_STALENESS (1 s); my other sessions go on. A session that is "
                    "not mine, or not live, is a 404. This session itself is a 409: it ends by logging out "
                    "(`/auth/token/blacklist/`).",
        parameters=[RETRY_AFTER], responses=api_responses({204: None}, 401, 429, own={
            404: (DETAIL_ERROR, "No live session of mine has this id."),
            409: (DETAIL_ERROR, "This is the session of the request: log out to end it."),
        }),
    )
    def delete(self, request: Request, session_id: uuid.UUID) -> Response:
        if session_id == self.current_session():
            raise Conflict(CURRENT_SESSION)
        if not accounts.session_end(user_id=request.user.pk, session_id=session_id, reason=Session.EndReason.REVOKED):
            raise NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- My security log ------------------------------------------------------------------------------


class SecurityLogPagination(CursorPagination):
    ordering = ("-sequence",)  # the user's own numbering: newest first, on the (user, sequence) index
    page_size = 50


SECURITY_PAGE = _page_of("SecurityLogPage", SecurityEventSerializer(many=True))


class SecurityLogView(_SessionsView):
    @extend_schema(
        summary="My security log", operation_id="users_me_events",
        description="What happened to my account, newest first: logins (with IP and device), new-device "
                    "alerts, failed logins, logouts, ended sessions and why, password changes, address changes "
                    "asked, made and reverted, verification, securing the account, second factors added, removed, "
                    "used and refused, leaving and restore. `by` is `you`, `staff` (never which one) or null "
                    "(a failed login, a refused second factor: anyone's). These are the account's events "
                    "(see User events), less profile edits.",
        parameters=[RETRY_AFTER, *_CURSOR],
        responses=api_responses({200: SECURITY_PAGE}, 401, 429, own={404: (DETAIL_ERROR, "The cursor is not valid.")}),
    )
    def get(self, request: Request) -> Response:
        events = UserEvent.objects.filter(user=request.user).exclude(type=UserEvent.Type.UPDATED)
        return _paginated(self, SecurityLogPagination, events, SecurityEventSerializer)
