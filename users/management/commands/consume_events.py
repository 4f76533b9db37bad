"""`manage.py consume_events --queue NAME --bind 'user.*'`: a consumer of the user events, and the
model of one: a durable queue, an ack only once the handler returned, and redeliveries skipped.

A durable queue keeps collecting events after its consumer stops, which is its point; `--temporary`
is a queue that goes away with the consumer (to watch, not to rely on), and `--delete-queue NAME`
removes one that is no longer wanted.
"""
import json
import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction
from django.utils.module_loading import import_string
from kombu import Connection, Exchange, Queue, binding

from users.models import ConsumedEvent


class Command(BaseCommand):
    help = "Consume user events from a durable queue bound to the events exchange."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--queue", default=None, help="the durable queue's name (declared if missing)")
        parser.add_argument("--temporary", action="store_true",
                            help="a queue of this consumer's own that the broker deletes when it stops")
        parser.add_argument("--delete-queue", default=None, metavar="NAME",
                            help="delete this queue (and the events waiting in it), then exit")
        parser.add_argument("--bind", action="append", default=None,
                            help="a binding key, e.g. 'user.*' or 'user.registered' (repeatable; default user.*)")
        parser.add_argument("--handler", default=None,
                            help="dotted path of a callable taking the event (a dict); default: print it")
        parser.add_argument("--max-events", type=int, default=None, help="stop after handling this many")
        parser.add_argument("--idle-timeout", type=float, default=None,
                            help="stop after this many seconds without a message")

    def handle(self, *args: Any, queue: str | None, temporary: bool, delete_queue: str | None,
               bind: list[str] | None, handler: str | None, max_events: int | None, idle_timeout: float | None,
               **options: Any) -> None:
        if delete_queue is not None:
            return self.delete(delete_queue)
        if (queue is None) == (not temporary):
            raise CommandError("give --queue NAME (durable), or --temporary")
        queue = queue or f"consume_events.{uuid.uuid4().hex[:12]}"
        call = import_string(handler) if handler else self.print_event
        exchange = Exchange(settings.EVENTS_EXCHANGE, "topic", durable=True)
        keys = bind or ["user.*"]
        declared = Queue(queue, exchange=exchange, durable=not temporary, exclusive=temporary, auto_delete=temporary,
                         bindings=[binding(exchange, routing_key=key) for key in keys])
        counts = {"handled": 0, "duplicates": 0}

        def on_message(message: Any) -> None:
            event = json.loads(message.body)
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        ConsumedEvent.objects.create(queue=queue, event_id=event["id"])
                except IntegrityError:
                    counts["duplicates"] += 1
                else:
                    call(event)  # raises: nothing recorded, the message is not acked, and comes back
                    counts["handled"] += 1
            message.ack()

        try:
            with Connection(settings.EVENTS_BROKER_URL) as connection:
                exchange(connection.default_channel).declare()
                with connection.Consumer(declared, on_message=on_message, prefetch_count=100):
                    kind = "temporary" if temporary else "durable"
                    self.stderr.write(f"Waiting for events on the {kind} queue {queue} (bound to {', '.join(keys)} "
                                      f"on {settings.EVENTS_EXCHANGE}); Ctrl-C stops.")
                    while max_events is None or counts["handled"] < max_events:
                        try:
                            connection.drain_events(timeout=idle_timeout)
                        except TimeoutError:
                            break
        except KeyboardInterrupt:
            pass
        except OSError as exc:
            raise CommandError(f"events broker unavailable: {exc}") from exc
        finally:
            self.stderr.write(f"handled {counts['handled']}, duplicates skipped {counts['duplicates']}")

    def delete(self, queue: str) -> None:
        try:
            with Connection(settings.EVENTS_BROKER_URL) as connection:
                dropped = connection.default_channel.queue_delete(queue)
        except OSError as exc:
            raise CommandError(f"events broker unavailable: {exc}") from exc
        self.stderr.write(f"deleted the queue {queue} and the {dropped} event(s) waiting in it")

    def print_event(self, event: dict[str, Any]) -> None:
        """The default handler: one JSON line per event on stdout."""
        self.stdout.write(json.dumps(event, ensure_ascii=False, sort_keys=True))
        self.stdout.flush()
