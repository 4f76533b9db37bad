"""DRF's cursor pagination with the cursor's position checked before it reaches a query."""
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.utils import timezone
from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.request import Request


class CursorPagination(pagination.CursorPagination):
    """A cursor is the client's input: DRF decodes its position (`p=`) and hands it to the first
    ordering field unchecked, so `p=abc` on an integer was a ValueError (a 500) and on a date a
    400 that echoed it. Here a position the field cannot hold is the documented 404 ("Invalid
    cursor"), before any query, whatever the ordering field."""

    model: type[Model] | None = None

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Any] | None:
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> pagination.Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        field = self.model._meta.get_field(self.ordering[0].lstrip("-"))
        try:  # the field's own parsing and range (a bigint's bounds, a datetime's format)
            position = field.clean(cursor.position, None)
        except ValidationError:
            raise NotFound(self.invalid_cursor_message)
        if isinstance(position, datetime) and timezone.is_naive(position):  # ours always carry their offset
            raise NotFound(self.invalid_cursor_message)
        return cursor
