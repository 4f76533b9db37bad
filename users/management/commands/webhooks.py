"""`manage.py webhooks add|list|disable|enable|rotate-secret|replay`: the webhook endpoints."""
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from users import webhooks
from users.management.moments import moment
from users.models import WebhookDelivery, WebhookEndpoint


class Command(BaseCommand):
    help = ("The webhook endpoints: `add URL --events 'user.*'` prints the new secret, `list` shows them, "
            "`disable`/`enable ID`, `rotate-secret ID` (the old one signs beside it for 24 h), "
            "`replay ID --since TIME | --user ID [--from-sequence N]`.")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="a new endpoint; prints its signing secret, shown this once")
        add.add_argument("url")
        add.add_argument("--events", required=True, help="comma-separated types or patterns: 'user.*'")
        add.add_argument("--description", default="")
        actions.add_parser("list", help="every endpoint, its state and its deliveries")
        for name in ("disable", "enable", "rotate-secret"):
            actions.add_parser(name).add_argument("endpoint", type=int)
        replay = actions.add_parser("replay", help="deliver recorded events again, with their ids")
        replay.add_argument("endpoint", type=int)
        replay.add_argument("--since", help="ISO 8601 date or time (UTC unless it says)")
        replay.add_argument("--user", type=int, help="only this user's events")
        replay.add_argument("--from-sequence", type=int, default=1, help="with --user: from this sequence number")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            getattr(self, action.replace("-", "_"))(**options)
        except webhooks.InvalidEndpoint as exc:
            raise CommandError(str(exc)) from None
        except WebhookEndpoint.DoesNotExist:
            raise CommandError(f"No endpoint {options['endpoint']}.") from None

    def add(self, *, url: str, events: str, description: str, **options: Any) -> None:
        endpoint, secret = webhooks.endpoint_add(url=url, event_types=events.split(","), description=description)
        types = ", ".join(endpoint.event_types)
        self.stdout.write(self.style.SUCCESS(f"Endpoint {endpoint.pk}: {endpoint.url} ({types})"))
        self.stdout.write(f"Signing secret (shown this once): {secret}")

    def list(self, **options: Any) -> None:
        for endpoint in WebhookEndpoint.objects.all():
            counts = {status: endpoint.deliveries.filter(status=status).count() for status in WebhookDelivery.Status}
            state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"
            self.stdout.write(f"{endpoint.pk}  {endpoint.url}  {','.join(endpoint.event_types)}  {state}  "
                              + "  ".join(f"{status}: {count}" for status, count in counts.items()))

    def disable(self, *, endpoint: int, **options: Any) -> None:
        webhooks.endpoint_enable(endpoint_id=WebhookEndpoint.objects.get(pk=endpoint).pk, enabled=False)
        self.stdout.write(self.style.SUCCESS(f"Endpoint {endpoint} disabled."))

    def enable(self, *, endpoint: int, **options: Any) -> None:
        webhooks.endpoint_enable(endpoint_id=WebhookEndpoint.objects.get(pk=endpoint).pk, enabled=True)
        self.stdout.write(self.style.SUCCESS(f"Endpoint {endpoint} enabled."))

    def rotate_secret(self, *, endpoint: int, **options: Any) -> None:
        secret = webhooks.secret_rotate(endpoint_id=endpoint)
        self.stdout.write(self.style.SUCCESS(f"New signing secret of endpoint {endpoint} (shown this once; "
                                             f"the previous one signs beside it for 24 h): {secret}"))

    def replay(self, *, endpoint: int, since: str | None, user: int | None, from_sequence: int,
               **options: Any) -> None:
        count = webhooks.deliveries_replay(endpoint_id=WebhookEndpoint.objects.get(pk=endpoint).pk,
                                           since=moment(since) if since is not None else None,
                                           user_id=user, from_sequence=from_sequence)
        self.stdout.write(self.style.SUCCESS(f"{count} event(s) to deliver again to endpoint {endpoint}."))
