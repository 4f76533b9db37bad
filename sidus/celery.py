"""The Celery app: `celery -A sidus worker` finds it through `sidus.celery_app`."""
import os
import threading
from typing import Any

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sidus.settings")

app = Celery("sidus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class OutboxDrain(bootsteps.StartStopStep):
    """Queues the outbox drain on the worker's own timer, so the worker needs no beat."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref = None

    def start(self, worker: Any) -> None:
        from django.conf import settings

        from users.tasks import queue_outbox_drain

        self.timer_ref = worker.timer.call_repeatedly(
            settings.EMAIL_OUTBOX_DRAIN_INTERVAL, queue_outbox_drain
        )

    def stop(self, worker: Any) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()


app.steps["worker"].add(OutboxDrain)


class EventRelay(bootsteps.StartStopStep):
    """Runs the user events relay (users/events/relay.py) in a thread of each worker's main
    process: several workers relay side by side, each user's events still in order. It starts
    after the pool, so that no child process is forked with its thread and connections."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def start(self, worker: Any) -> None:
        from django.conf import settings

        from users.events.relay import Relay

        if settings.EVENTS_RELAY:
            self.thread = threading.Thread(target=Relay().run, args=(self.stopping,), name="events-relay", daemon=True)
            self.thread.start()

    def stop(self, worker: Any) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


app.steps["worker"].add(EventRelay)


class WebhookSender(bootsteps.StartStopStep):
    """Runs a webhook sender (users/webhooks/sender.py) in a thread of each worker's main process,
    beside the relay: several senders share the deliveries, each endpoint's users' still in order."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def start(self, worker: Any) -> None:
        from django.conf import settings

        from users.webhooks.sender import Sender

        if settings.WEBHOOKS_SENDER:
            self.thread = threading.Thread(target=Sender().run, args=(self.stopping,), name="webhooks", daemon=True)
            self.thread.start()

    def stop(self, worker: Any) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


app.steps["worker"].add(WebhookSender)
