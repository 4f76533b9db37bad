"""The outbox and the user events in the admin: read-only, but for releasing parked events."""
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from users.admin.users import counted
from users.events import relay
from users.models import OutboxEmail, UserEvent


@admin.register(OutboxEmail)
class OutboxEmailAdmin(admin.ModelAdmin):
    """Read-only: rows are written by services and sent by the worker."""

    list_display = ("kind", "user", "to", "status", "created_at", "sent_at")
    list_filter = ("kind", "status")
    search_fields = ("user__username", "to")
    readonly_fields = ("kind", "user", "to", "status", "created_at", "sent_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OutboxEmail | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OutboxEmail | None = None) -> bool:
        return False


class EventStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "Waiting (the backlog)"), ("parked", "Parked"), ("published", "Published")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "waiting":
            return queryset.filter(published_at__isnull=True, parked_at__isnull=True)
        if value == "parked":
            return queryset.filter(published_at__isnull=True, parked_at__isnull=False)
        if value == "published":
            return queryset.filter(published_at__isnull=False)
        return queryset


@admin.register(UserEvent)
class UserEventAdmin(admin.ModelAdmin):
    """Read-only: the events are written by the changes themselves and published by the relay.
    A parked event (refused too often) waits here, holding up its user's later events, until
    staff release it for another try."""

    list_display = ("type", "user", "sequence", "time", "published_at", "attempts", "parked_at")
    list_filter = (EventStateFilter, "type")
    search_fields = ("=user__id", "=id")
    readonly_fields = [field.name for field in UserEvent._meta.fields]
    list_select_related = ("user",)  # the names of a page's users in its one query
    actions = ("release",)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        waiting = UserEvent.objects.filter(published_at__isnull=True).count()
        title = f"User events: {waiting} waiting to be published"
        return super().changelist_view(request, {**(extra_context or {}), "title": title})

    @admin.action(description="Try the selected parked events again", permissions=["release"])
    def release(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = relay.events_release(event_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{counted(count, 'parked event').capitalize()} will be tried again.",
                          messages.SUCCESS)

    def has_release_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("users.change_userevent")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UserEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UserEvent | None = None) -> bool:
        return False
