"""Version tags of a profile: a strong ETag on its JSON answers, checked by If-None-Match on GET
(304) and by If-Match on PATCH (412 when someone changed it since).

The tag hashes the JSON bytes and the row's `updated_at`, so it changes with any write (an email
change too, which the public bytes do not show) and never names two different bodies.
"""
import hashlib
from datetime import datetime
from typing import Any

from django.utils.http import parse_etags
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer

from users.models import User
from users.profile.serializers import UserPrivateSerializer, UserPublicSerializer, representation


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The profile changed since you read it: read it again, then retry with its new ETag."
    default_code = "precondition_failed"


def representation_etag(data: Any, updated_at: datetime) -> str:
    """The ETag of `data` rendered as the API's plain JSON."""
    return body_etag(JSONRenderer().render(data), updated_at)


def body_etag(body: bytes, updated_at: datetime) -> str:
    """The ETag of a representation rendered already into these JSON bytes."""
    return '"%s"' % hashlib.blake2b(body + b"\0" + updated_at.isoformat().encode(), digest_size=16).hexdigest()


def current_etags(user: User) -> set[str]:
    """The tags a client may hold for the current version: from GET /users/{id}/ or /users/me/."""
    return {
        representation_etag(representation(UserPublicSerializer, user), user.updated_at),
        representation_etag(representation(UserPrivateSerializer, user), user.updated_at),
    }


def require_if_match(if_match: str) -> Any:
    """A precondition for `accounts.user_update`: raise 412 unless `if_match` names the current version."""

    def check(user: User) -> None:
        tags = parse_etags(if_match)
        if "*" in tags:
            return
        current = current_etags(user)
        if not any(tag in current for tag in tags):  # strong comparison: a W/ tag never matches
            raise PreconditionFailed()

    return check
