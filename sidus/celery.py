"""The Celery app: `celery -A sidus worker` finds it through `sidus.celery_app`."""
import os
import threading
from collections.abc import Callable
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


class BackgroundLoop(bootsteps.StartStopStep):
    """Runs one of users' loops (its `run(stop)`) in a thread of each worker's main process, several
    workers side by side. It starts after the pool, so that no child process is forked with its
    thread and connections."""

    requires = {"celery.worker.components:Pool"}
    thread_name = ""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def loop(self) -> Callable[[threading.Event], None] | None:
        """The loop's `run`, or None when the settings switch it off."""
        raise NotImplementedError

    def start(self, worker: Any) -> None:
        if (run := self.loop()) is not None:
            self.thread = threading.Thread(target=run, args=(self.stopping,), name=self.thread_name, daemon=True)
            self.thread.start()

    def stop(self, worker: Any) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)


class EventRelay(BackgroundLoop):
    """The user events relay (users/events/relay.py): each user's events still in order."""

    thread_name = "events-relay"

    def loop(self) -> Callable[[threading.Event], None] | None:
        from django.conf import settings

        from users.events.relay import Relay

        return Relay().run if settings.EVENTS_RELAY else None


class WebhookSender(BackgroundLoop):
    """A webhook sender (users/webhooks/sender.py): each endpoint's users' events still in order."""

    thread_name = "webhooks"

    def loop(self) -> Callable[[threading.Event], None] | None:
        from django.conf import settings

        from users.webhooks.sender import Sender

        return Sender().run if settings.WEBHOOKS_SENDER else None


app.steps["worker"].add(EventRelay)
app.steps["worker"].add(WebhookSender)
