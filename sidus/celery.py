"""The Celery app: `celery -A sidus worker` finds it through `sidus.celery_app`."""
import os
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
