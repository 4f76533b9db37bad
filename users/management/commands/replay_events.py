"""`manage.py replay_events --since TIME [--user ID]`: publish recorded events again, same ids."""
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from users.events.cloudevents import Outgoing
from users.events.relay import BrokerUnavailable, Publisher
from users.management.moments import moment
from users.models import UserEvent

CHUNK = 500


class Command(BaseCommand):
    help = "Publish again the user events recorded since TIME (each user's in order, with their ids)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--since", required=True, help="ISO 8601 date or time (UTC unless it says)")
        parser.add_argument("--user", type=int, default=None, help="only this user's events")

    def handle(self, *args: Any, since: str, user: int | None, **options: Any) -> None:
        events = UserEvent.objects.filter(time__gte=moment(since)).order_by("user_id", "sequence")
        if user is not None:
            events = events.filter(user_id=user)
        publisher = Publisher()
        sent = 0
        try:
            batch: list[Outgoing] = []
            for event in events.iterator(chunk_size=CHUNK):
                batch.append(Outgoing.of(event))
                if len(batch) == CHUNK:
                    sent += self._publish(publisher, batch)
                    batch = []
            sent += self._publish(publisher, batch)
        except BrokerUnavailable as exc:
            raise CommandError(f"events broker unavailable after {sent} events: {exc}") from exc
        finally:
            publisher.close()
        self.stdout.write(f"replayed {sent} events")

    def _publish(self, publisher: Publisher, batch: list[Outgoing]) -> int:
        if not batch:
            return 0
        outcomes = publisher.publish(batch)
        refused = {str(event_id): error for event_id, error in outcomes.items() if error is not None}
        if refused:
            raise CommandError(f"the broker refused {len(refused)} events: {refused}")
        return len(batch)
