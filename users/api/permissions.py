from typing import Any

from rest_framework.permissions import BasePermission


class IsSelf(BasePermission):
    """Only the user may change themselves. simplejwt gives ids as strings: compare as strings."""

    message = "You may only change your own profile."

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        return str(obj.pk) == str(request.user.pk)
