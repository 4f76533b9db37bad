"""The user API. Thin: parse, call a service inside one thread hop, serialize."""
from typing import Any

from adrf.viewsets import GenericViewSet
from django.conf import settings
from django.utils.cache import add_never_cache_headers, get_conditional_response
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from sidus.http.dispatch import OneHopMixin
from sidus.http.openapi import ETAG, IF_MATCH, IF_NONE_MATCH, NOT_MODIFIED, RETRY_AFTER, api_responses
from users import accounts
from users.api import examples
from users.api.accounts import proven
from users.api.permissions import IsSelf
from users.api.serializers import CurrentPasswordSerializer, DetailSerializer
from users.models import MAX_USER_ID, User, user_id_from
from users.profile import etags
from users.profile.serializers import (
    UserCreateSerializer,
    UserPrivateSerializer,
    UserPublicSerializer,
    UserUpdateSerializer,
)
from users.ratelimits import ActionThrottle

# Actions anyone may call, and methods no action serves (None: 405 rather than a 401 that
# suggests logging in would help). They skip authentication: retrieve must not depend on who asks.
_PUBLIC_ACTIONS = {"acreate", "aretrieve", None}
SIGNUP_ACCEPTED = "Check your inbox: the link sent to this address creates the account."


USER_ID = OpenApiParameter(
    "id", {"type": "integer", "minimum": 1, "maximum": MAX_USER_ID}, OpenApiParameter.PATH,
    description="The user's id in canonical decimal form (`5`, never `05`).",
)
X_CACHE = OpenApiParameter(
    "X-Cache", {"type": "string", "enum": ["L1", "L2", "MISS"]}, OpenApiParameter.HEADER, response=[200, 404],
    description="Where the answer came from: this worker's memory, Redis, or PostgreSQL.",
)


def _is_plain_json(response: Response) -> bool:
    return response.accepted_renderer.format == "json" and ";" not in (response.accepted_media_type or "")


def parse_user_id(value: str) -> int:
    """A 404, not a database error, for ids that cannot exist."""
    user_id = user_id_from(value)
    if user_id is None:
        raise NotFound()
    return user_id


class UserViewSet(OneHopMixin, GenericViewSet):
    """Registration, public profiles, and each user's own private profile.

    The router names the actions the adrf way (`acreate`, `partial_aupdate`). The public read is
    async and stays on the loop; the others are sync, so that each runs in one thread hop together
    with authentication, permissions and throttles (sidus/http/dispatch.py).
    """

    queryset = User.objects.alive()
    serializer_class = UserPublicSerializer
    view_is_async = True  # adrf would work it out with getmembers() on every request

    def initialize_request(self, request: Any, *args: Any, **kwargs: Any) -> Request:
        # DRF sets self.action only after building the authenticators; they depend on it here.
        self.action = self.action_map.get(request.method.lower())
        return super().initialize_request(request, *args, **kwargs)

    def get_authenticators(self) -> list[Any]:
        if self.action in _PUBLIC_ACTIONS:
            return []
        return super().get_authenticators()

    def get_permissions(self) -> list[Any]:
        if self.action in _PUBLIC_ACTIONS:
            return [AllowAny()]
        return [IsAuthenticated(), IsSelf()]

    def get_throttles(self) -> list[Any]:
        if self.action == "acreate":
            return [ActionThrottle("signup")]
        if self.action == "partial_aupdate" or (self.action == "me" and self.request.method == "PATCH"):
            return [ActionThrottle("update")]
        if self.action == "me" and self.request.method == "DELETE":
            return [ActionThrottle("account_delete")]
        return []

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.action != "aretrieve":  # everything else carries an email address or nothing to keep
            add_never_cache_headers(response)
        elif response.status_code == 200 and _is_plain_json(response):
            # The ETag names the plain JSON bytes; other renderings (HTML, indent=4) get none.
            response["ETag"] = self.etag
            return get_conditional_response(request, etag=self.etag, response=response)
        return response

    @extend_schema(
        summary="Register",
        description="Creates a user and queues a welcome email. Answers the private representation "
                    "(with the email). Usernames are NFKC-normalized and unique whatever their case; "
                    "mixed-script look-alikes and reserved names (admin, root, support, ...) are refused. "
                    "With SIGNUP_PREVENT_ENUMERATION on, every valid signup answers 202 instead, whether or not "
                    "the address has an account: the account is created by the link emailed to the address "
                    "(`POST /auth/signup/confirm/`), and a taken address gets a notice; only a taken username "
                    "is a 409.",
        request=UserCreateSerializer, examples=[examples.REGISTER], parameters=[RETRY_AFTER],
        responses=api_responses({201: UserPrivateSerializer, 202: DetailSerializer}, 400, 409, 413, 415, 429),
    )
    def acreate(self, request: Request) -> Response:
        quiet = settings.SIGNUP_PREVENT_ENUMERATION
        serializer = UserCreateSerializer(data=request.data, context={"email_may_be_taken": quiet})
        serializer.is_valid(raise_exception=True)
        if quiet:
            accounts.signup_request(**serializer.validated_data)
            return Response({"detail": SIGNUP_ACCEPTED}, status=status.HTTP_202_ACCEPTED)
        user = accounts.user_create(**serializer.validated_data)
        return Response(UserPrivateSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Read a public profile",
        description="Anyone may read it; no email. Served from memory or Redis when cached (X-Cache says "
                    "where from); a token, valid or not, changes nothing.",
        auth=[], parameters=[USER_ID, X_CACHE, IF_NONE_MATCH, ETAG],
        responses=api_responses({200: UserPublicSerializer, 304: NOT_MODIFIED}, 404),
    )
    async def aretrieve(self, request: Request, pk: str) -> Response:
        user = await self.get_queryset().filter(pk=parse_user_id(pk)).afirst()
        if user is None:
            raise NotFound()
        data = UserPublicSerializer(user).data
        self.etag = etags.representation_etag(data, user.updated_at)
        return Response(data)

    @extend_schema(
        summary="Update a profile",
        description="Only the user may change their own fields, and only those in the body. "
                    "Answers the private representation. With If-Match, a profile changed since it was "
                    "read is not overwritten (412). `email` is refused with a 400 naming it: the address "
                    "changes with `POST /auth/email/change/` (the password, then the new address's link).",
        request=UserUpdateSerializer, examples=[examples.UPDATE], parameters=[USER_ID, IF_MATCH, ETAG, RETRY_AFTER],
        responses=api_responses({200: UserPrivateSerializer}, 400, 401, 403, 404, 409, 412, 413, 415, 429),
    )
    def partial_aupdate(self, request: Request, pk: str) -> Response:
        return self._update(request, parse_user_id(pk))

    def _update(self, request: Request, user_id: int) -> Response:
        # The token already loaded the caller; only someone else's id needs a query (404 or 403).
        if user_id == request.user.pk:
            user = request.user
        else:
            user = self.get_queryset().filter(pk=user_id).first()
            if user is None:
                raise NotFound()
        self.check_object_permissions(request, user)
        serializer = UserUpdateSerializer(user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        if_match = request.headers.get("If-Match")
        precondition = etags.require_if_match(if_match) if if_match else None
        user = accounts.user_update(user=user, data=serializer.validated_data, precondition=precondition)
        return self._private(user)

    @staticmethod
    def _private(user: User) -> Response:
        """The private representation, tagged with its version for the next If-Match."""
        data = UserPrivateSerializer(user).data
        return Response(data, headers={"ETag": etags.representation_etag(data, user.updated_at)})

    @extend_schema(
        methods=["GET"], summary="Read my profile",
        description="The private representation of the token's user, email included.",
        parameters=[ETAG], responses=api_responses({200: UserPrivateSerializer}, 401),
    )
    @extend_schema(
        methods=["PATCH"], summary="Update my profile",
        description="The same as updating `/users/{id}/` with one's own id. `email` is refused with a 400 "
                    "naming it: the address changes with `POST /auth/email/change/`, which needs the password "
                    "and the new address's consent, never a token alone.",
        request=UserUpdateSerializer, examples=[examples.UPDATE], parameters=[IF_MATCH, ETAG, RETRY_AFTER],
        responses=api_responses({200: UserPrivateSerializer}, 400, 401, 409, 412, 413, 415, 429),
    )
    @extend_schema(
        methods=["DELETE"], summary="Leave",
        description="Needs the current password. A soft delete, as the admin's: the profile answers 404 and "
                    "every token 401 at once; the username and email stay taken.",
        request=CurrentPasswordSerializer, examples=[examples.LEAVE], parameters=[RETRY_AFTER],
        responses=api_responses({204: None}, 400, 401, 413, 415, 429),
    )
    @action(detail=False, methods=["get", "patch", "delete"])
    def me(self, request: Request) -> Response:
        if request.method == "GET":
            return self._private(request.user)
        if request.method == "DELETE":
            proven(request, CurrentPasswordSerializer)
            accounts.user_soft_delete(user=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self._update(request, request.user.pk)
