"""Users in the admin. Delete is a soft delete (with restore); nothing removes a row; every change
goes through the account flows, as staff's."""
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from users import accounts
from users.accounts.ended import seen_since
from users.models import Session, User

PRIVILEGE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")
SESSION_COLUMNS = {"device": "device", "ip": "IP", "created_at": "created", "last_seen_at": "last seen",
                   "ended_at": "ended", "end_reason": "why"}


def _session_cell(session: Session, name: str) -> str:
    """A cell as a person reads it: local times to the minute, the reason in words."""
    if name == "end_reason":
        return session.get_end_reason_display() or "-"
    value = getattr(session, name)
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "Y-m-d H:i")
    return value or "-"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """"1 user", "2 users": the admin's messages say it as Django's own do."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


class StaffPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's password form, through the service as every password change: the user's
    sessions end (reason `staff`), the log says staff did it, and the owner gets the notice."""

    def save(self, commit: bool = True) -> User:
        password = self.cleaned_data["password1"] if self.cleaned_data["set_usable_password"] else None
        return accounts.password_change(user=self.user, new_password=password, reason=Session.EndReason.STAFF)


class DeletedFilter(admin.SimpleListFilter):
    """Soft-deleted users are hidden unless asked for: "Not deleted" is the default choice."""

    title = "deleted"
    parameter_name = "deleted"
    DEFAULT = "no"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "Not deleted"), ("yes", "Deleted"), ("all", "All")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value() or self.DEFAULT
        if value == "yes":
            return queryset.deleted()
        if value == "all":
            return queryset
        return queryset.alive()

    def choices(self, changelist: Any) -> Any:
        # Django's own first choice, "All", would mean no parameter, which here means "Not deleted".
        current = self.value() or self.DEFAULT
        for value, label in self.lookup_choices:
            yield {"selected": current == value, "display": label,
                   "query_string": changelist.get_query_string({self.parameter_name: value})}


class ActiveFilter(admin.SimpleListFilter):
    title = "activity"
    parameter_name = "active"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("30d", "Active in the last 30 days")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "30d":
            return queryset.filter(last_seen__gte=timezone.now() - timedelta(days=30))
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "deleted", "email", "first_name", "last_name", "is_staff", "is_active",
                    "live_sessions", "last_seen")
    list_filter = (DeletedFilter, ActiveFilter, "email_verified", "is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("username", "email", "first_name", "last_name")
    readonly_fields = ("deleted_at", "updated_at", "last_login", "date_joined", "sessions", "pending_email_change",
                       "second_factors")
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Profile", {"fields": ("email_verified", "pending_email_change", "bio", "updated_at", "deleted_at")}),
        ("Sessions", {"fields": ("sessions",)}),
        ("Second factors", {"fields": ("second_factors",)}),
    )
    actions = ("delete_selected", "restore", "send_password_reset", "end_sessions", "cancel_email_changes",
               "remove_factors")
    change_password_form = StaffPasswordChangeForm

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        """Each user's live sessions and last activity, in the changelist's one query."""
        live = Q(sessions__ended_at__isnull=True, sessions__last_seen_at__gte=seen_since())
        return super().get_queryset(request).annotate(
            live_sessions=Count("sessions", filter=live), last_seen=Max("sessions__last_seen_at"),
        )

    @admin.display(description="sessions")
    def sessions(self, user: User) -> str:
        """The user's sessions, newest activity first (read-only: "End all sessions" ends them)."""
        rows = user.sessions.order_by("-last_seen_at")[:50]
        if not rows:
            return "None"
        head = format_html_join("", "<th>{}</th>", ((name,) for name in SESSION_COLUMNS.values()))
        body = format_html_join("", "<tr>{}</tr>", (
            (format_html_join("", "<td>{}</td>", ((_session_cell(row, name),) for name in SESSION_COLUMNS)),)
            for row in rows
        ))
        # Scrolls within the page's column rather than running off its right edge.
        return format_html('<div style="overflow-x: auto; max-width: 100%"><table><thead><tr>{}</tr></thead>'
                           "<tbody>{}</tbody></table></div>", head, body)

    @admin.display(description="pending email change")
    def pending_email_change(self, user: User) -> str:
        """The address the user asked to move to, until its link is followed ("Cancel pending
        email changes" drops it)."""
        change = user.email_changes.pending().first()
        if change is None:
            return "None"
        return f"to {change.new_email}, asked {change.created_at:%Y-%m-%d %H:%M} UTC, waiting for its link"

    @admin.display(description="deleted", boolean=True, ordering="deleted_at")
    def deleted(self, user: User) -> bool:
        """Next to the name, where it is seen: the row of a soft-deleted user is kept."""
        return user.deleted_at is not None

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None) -> Any:
        return super().delete_view(request, object_id, {"title": "Soft-delete this user?", **(extra_context or {})})

    @admin.display(description="live sessions", ordering="live_sessions")
    def live_sessions(self, user: User) -> int:
        return user.live_sessions

    @admin.display(description="last seen", ordering="last_seen")
    def last_seen(self, user: User) -> Any:
        return user.last_seen

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> tuple[str, ...]:
        # Only superusers hand out privileges: staff cannot raise their own (or a friend's).
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else fields + PRIVILEGE_FIELDS

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        """A change is written by the service, as staff's: only the fields the form changed."""
        if not change:
            return super().save_model(request, obj, form, change)
        columns = {field.name for field in User._meta.concrete_fields}
        data = {name: getattr(obj, name) for name in form.changed_data if name in columns}
        accounts.user_change_by_staff(user_id=obj.pk, data=data)

    # The standard delete view and delete action both end here: keep the row.
    def delete_model(self, request: HttpRequest, obj: User) -> None:
        accounts.user_soft_delete(user=obj, ended_by=Session.EndReason.STAFF)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        accounts.users_soft_delete(user_ids=queryset.values_list("pk", flat=True))

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list, dict, set, list]:
        # A soft delete touches nothing else (tokens, outbox rows stay): list only the users.
        to_delete = [str(obj) for obj in objs]
        return to_delete, {User._meta.verbose_name_plural: len(to_delete)}, set(), []

    @admin.action(description="Soft delete selected users", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet) -> Any:
        """Django's own action (confirmation page, then `delete_queryset`) under a name that tells."""
        response = admin_actions.delete_selected(self, request, queryset)
        if getattr(response, "context_data", None) is not None:  # the confirmation page, not yet rendered
            response.context_data["title"] = "Soft-delete the selected users?"
        return response

    def message_user(self, request: HttpRequest, message: Any, *args: Any, **kwargs: Any) -> None:
        # Django's delete view and action report the rows "deleted": say what happened to them.
        message = str(message).replace("was deleted successfully", "was soft-deleted (the row is kept)")
        message = message.replace("Successfully deleted", "Soft-deleted (rows kept):")
        super().message_user(request, message, *args, **kwargs)

    @admin.action(description="Send password reset email", permissions=["change"])
    def send_password_reset(self, request: HttpRequest, queryset: QuerySet) -> None:
        users = list(queryset.may_log_in())
        for user in users:
            accounts.password_reset_send(user=user)
        skipped = queryset.count() - len(users)
        note = f" {counted(skipped, 'deleted or inactive user')} skipped." if skipped else ""
        self.message_user(request, f"Queued a password reset email to {counted(len(users), 'user')}.{note}",
                          messages.SUCCESS)

    @admin.action(description="End all sessions of selected users", permissions=["change"])
    def end_sessions(self, request: HttpRequest, queryset: QuerySet) -> None:
        ended = sum(accounts.sessions_end(user=user, reason=Session.EndReason.STAFF) for user in queryset)
        self.message_user(request, f"Ended {counted(ended, 'session')}: their tokens answer 401 from now on.",
                          messages.SUCCESS)

    @admin.action(description="Cancel pending email changes of selected users", permissions=["change"])
    def cancel_email_changes(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = accounts.email_changes_cancel(user_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Cancelled {counted(count, 'pending email change')}: their links no longer work.",
                          messages.SUCCESS)

    @admin.display(description="second factors")
    def second_factors(self, user: User) -> str:
        """What the user has (never a secret): "Remove second factors" removes them."""
        found = accounts.factors_of(user=user)
        parts = ["authenticator app"] if found["totp"]["enabled"] else []
        parts += [f"passkey \"{passkey.name}\"" for passkey in found["passkeys"]]
        if found["recovery_codes"]["total"]:
            codes = found["recovery_codes"]
            parts.append(f"{codes['left']} of {codes['total']} recovery codes left")
        return "; ".join(parts) or "none"

    @admin.action(description="Remove second factors of selected users", permissions=["change"])
    def remove_factors(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = accounts.factors_remove_by_staff(user_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Removed {counted(count, 'second factor')}: those users log in with their "
                          "password alone until they set one up again.", messages.SUCCESS)

    @admin.action(description="Restore selected users", permissions=["change"])
    def restore(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = accounts.users_restore(user_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Restored {counted(count, 'user')}.", messages.SUCCESS)
