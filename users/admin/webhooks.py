"""The webhook endpoints and their deliveries in the admin: every change through users.webhooks."""
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from users import webhooks
from users.admin.users import counted
from users.models import WebhookDelivery, WebhookEndpoint
from users.webhooks import network


class EndpointForm(forms.ModelForm):
    """The URL and the event types checked as the service checks them, as field errors."""

    url = forms.URLField(max_length=2000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "event_types", "enabled")

    def clean_url(self) -> str:
        try:
            network.url_check(self.cleaned_data["url"])
        except network.Refused as exc:
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data["url"]

    def clean_event_types(self) -> list[str]:
        try:
            return webhooks.event_types_check(self.cleaned_data["event_types"])
        except webhooks.InvalidEndpoint as exc:
            raise forms.ValidationError(str(exc)) from None


class ReplayForm(forms.Form):
    since = forms.DateTimeField(required=False, help_text="Every event recorded since (UTC unless it says).")
    user = forms.IntegerField(required=False, min_value=1, help_text="Or only this user's events…")
    from_sequence = forms.IntegerField(required=False, min_value=1, initial=1, help_text="…from this sequence on.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("since") is None and data.get("user") is None:
            raise forms.ValidationError("Give a time, or a user (and a sequence number).")
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """The secret is shown once, when made (a new endpoint, a rotation); never stored in clear."""

    form = EndpointForm
    list_display = ("url", "description", "types", "enabled", "failing_since", "disabled_reason", "deliveries")
    list_filter = ("enabled",)
    readonly_fields = ("created_at", "failing_since", "disabled_reason", "previous_secret_until")
    actions = ["rotate_secret", "disable", "enable", "replay"]

    @admin.display(description="event types")
    def types(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types)

    @admin.display(description="deliveries")
    def deliveries(self, obj: WebhookEndpoint) -> str:
        url = reverse("admin:users_webhookdelivery_changelist") + f"?endpoint__id__exact={obj.pk}"
        return format_html('<a href="{}">deliveries</a>', url)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: forms.ModelForm, change: bool) -> None:
        enabled_changed = change and "enabled" in form.changed_data
        secret = webhooks.endpoint_change(endpoint=obj, url=obj.url, event_types=obj.event_types)
        if enabled_changed:
            webhooks.endpoint_enable(endpoint_id=obj.pk, enabled=obj.enabled)
        if secret:
            messages.warning(request, f"Signing secret of {obj.url} (shown this once): {secret}")

    @admin.action(description="Rotate the signing secret (the old one signs beside it for 24 h)",
                  permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> None:
        for endpoint in queryset:
            secret = webhooks.secret_rotate(endpoint_id=endpoint.pk)
            messages.warning(request, f"New signing secret of {endpoint.url} (shown this once): {secret}")

    @admin.action(description="Disable selected endpoints", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet) -> None:
        for endpoint in queryset:
            webhooks.endpoint_enable(endpoint_id=endpoint.pk, enabled=False)
        self.message_user(request, f"Disabled {counted(len(queryset), 'endpoint')}.")

    @admin.action(description="Enable selected endpoints", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet) -> None:
        for endpoint in queryset:
            webhooks.endpoint_enable(endpoint_id=endpoint.pk, enabled=True)
        self.message_user(request, f"Enabled {counted(len(queryset), 'endpoint')}.")

    @admin.action(description="Replay events from a time or a user's sequence number", permissions=["change"])
    def replay(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        form = ReplayForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            data = form.cleaned_data
            count = sum(webhooks.deliveries_replay(endpoint_id=endpoint.pk, since=data["since"], user_id=data["user"],
                                                   from_sequence=data["from_sequence"] or 1) for endpoint in queryset)
            self.message_user(request, f"{counted(count, 'event')} to deliver again.")
            return None
        return TemplateResponse(request, "admin/users/webhooks/replay.html", {
            **self.admin_site.each_context(request), "title": "Replay events", "form": form, "endpoints": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "opts": self.model._meta,
        })


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Read-only: written with the events, updated by the senders. A failed delivery holds its user's
    later events for its endpoint until sent again or dismissed."""

    list_display = ("event", "endpoint", "user_id", "sequence", "status", "attempts", "last_status",
                    "last_attempt_at", "next_attempt_at")
    list_filter = ("status", "endpoint")
    search_fields = ("=user_id", "=event__id")
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    list_select_related = ("event", "endpoint")
    actions = ["send_again", "dismiss"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        return False

    @admin.action(description="Send again", permissions=["change"])
    def send_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = webhooks.deliveries_resend(delivery_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{counted(count, 'delivery', 'deliveries')} to send again.")

    @admin.action(description="Dismiss failed deliveries (their users' later events go on)", permissions=["change"])
    def dismiss(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = webhooks.deliveries_dismiss(delivery_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"Dismissed {counted(count, 'failed delivery', 'failed deliveries')}.")
